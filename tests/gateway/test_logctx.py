"""Request logs carry the orchestration (and task) id of the path."""

from __future__ import annotations

import structlog
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from orra_gateway.logctx import log_context_middleware

log = structlog.get_logger("test")


@get("/orchestrations/{orchestration_id:str}/things/{task_id:str}")
async def thing(orchestration_id: FromPath[str], task_id: FromPath[str]) -> str:
    log.info("deep inside", path_had=f"{orchestration_id}/{task_id}")
    return "ok"


@get("/other")
async def other() -> str:
    log.info("elsewhere")
    return "ok"


async def test_ids_of_the_path_are_bound_for_the_request_only() -> None:
    app = Litestar([thing, other], middleware=[log_context_middleware])
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/orchestrations/o_1/things/t_2")).status_code == 200
            assert (await client.get("/other")).status_code == 200
    deep = next(e for e in logs if e["event"] == "deep inside")
    assert deep["orchestration_id"] == "o_1"
    assert deep["task_id"] == "t_2"
    elsewhere = next(e for e in logs if e["event"] == "elsewhere")
    assert "orchestration_id" not in elsewhere
    assert "orchestration_id" not in structlog.contextvars.get_contextvars()
