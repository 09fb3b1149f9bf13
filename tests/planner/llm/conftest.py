"""Fixtures of the LLM planner tests: a scripted OpenAI-compatible server, services, KV."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from orra_events import Bus, Plan, ServiceRegistered
from orra_planner.llm import GroundingStore, LlmSettings, PlanCache


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(content: str, *, prompt_tokens: int = 100, completion_tokens: int = 20) -> Reply:
    """A chat completion answering ``content``."""
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def error(status: int, message: str, *, param: str | None = None, **headers: str) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "invalid_request_error", "param": param}},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


class ScriptedLlm:
    """An OpenAI-compatible server whose answers each test scripts; it records requests."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self.script: deque[Reply] = deque()
        self.embeddings: dict[str, list[float]] = {}

    def reset(self) -> None:
        self.requests.clear()
        self.embedding_requests.clear()
        self.script.clear()
        self.embeddings.clear()

    def then(self, *replies: Reply | str) -> ScriptedLlm:
        for r in replies:
            self.script.append(completion(r) if isinstance(r, str) else r)
        return self

    @property
    def chat_count(self) -> int:
        return len(self.requests)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.loads(b"".join(chunks) or b"{}")
        path = scope["path"]
        if path.endswith("/chat/completions"):
            self.requests.append(body)
            reply = (
                self.script.popleft()
                if self.script
                else error(500, "the test scripted no more answers")
            )
        elif path.endswith("/embeddings"):
            self.embedding_requests.append(body)
            vector = self.embeddings.get(body.get("input"), [1.0, 0.0, 0.0])
            reply = Reply(
                body={
                    "object": "list",
                    "model": body.get("model"),
                    "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                }
            )
        else:
            reply = error(404, f"no route {path}")
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        payload = json.dumps(reply.body).encode()
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="session")
def llm_server_session() -> Iterator[ScriptedLlm]:
    app = ScriptedLlm()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", ws="none", http="h11", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the scripted LLM server did not start")
        time.sleep(0.01)
    app.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def llm_server(llm_server_session: ScriptedLlm) -> Iterator[ScriptedLlm]:
    llm_server_session.reset()
    yield llm_server_session
    llm_server_session.reset()


@pytest.fixture
def settings(llm_server: ScriptedLlm) -> LlmSettings:
    return LlmSettings(
        base_url=llm_server.url,
        api_key="test-key",
        model="test-model",
        timeout_s=5.0,
        max_retries=2,
        backoff_base_s=0.01,
        keepalive_s=0.05,
    )


def _service(name: str, description: str, inputs: dict[str, str], outputs: dict[str, str]) -> Any:
    def schema(fields: dict[str, str]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {k: {"type": v} for k, v in fields.items()},
            "required": list(fields),
        }

    return ServiceRegistered(
        event_id=f"reg:{name}:1",
        service=name,
        description=description,
        input_schema=schema(inputs),
        output_schema=schema(outputs),
        schema_hash=f"h-{name}",
    )


@pytest.fixture
def services() -> list[ServiceRegistered]:
    return [
        _service(
            "PaymentService",
            "Charges a customer for an order.",
            {"orderId": "string", "amount": "string"},
            {"status": "string", "transactionId": "string"},
        ),
        _service(
            "InventoryService",
            "Checks and reserves stock of a product.",
            {"productId": "string"},
            {"inStock": "boolean"},
        ),
        _service(
            "DeliveryAgent",
            "Arranges the optimal delivery of an order.",
            {"orderId": "string", "inStock": "boolean"},
            {"trackingId": "string"},
        ),
    ]


@pytest.fixture
def validate(services: list[ServiceRegistered]) -> Any:
    """A small validator: unknown services and missing required inputs are errors."""
    known = {s.service: s for s in services}

    def _validate(plan: Plan) -> list[str]:
        errors = []
        for t in plan.tasks:
            svc = known.get(t.service)
            if svc is None:
                errors.append(f"task {t.id!r}: unknown service {t.service!r}")
                continue
            errors.extend(
                f"task {t.id!r}: missing input field {name!r}"
                for name in svc.input_schema.get("required", [])
                if name not in t.input
            )
        return errors

    return _validate


@pytest.fixture
async def plan_cache(bus: Bus) -> AsyncIterator[PlanCache]:
    yield await PlanCache.open(bus)
    with contextlib.suppress(Exception):
        await bus.js.delete_key_value(bus.topology.bucket("plan_cache"))


@pytest.fixture
async def grounding_store(bus: Bus) -> AsyncIterator[GroundingStore]:
    yield await GroundingStore.open(bus)
    with contextlib.suppress(Exception):
        await bus.js.delete_key_value(bus.topology.bucket("grounding"))
