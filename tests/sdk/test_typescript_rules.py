"""Property tests: ``orra_sdk`` and ``@orra/sdk`` agree on generated inputs.

The rules two processes in two languages must apply alike (the schema hash of a service
definition, the key of an idempotency record, and how a work message decodes or why it is
refused) are checked on many generated inputs: Hypothesis builds a batch, the TypeScript
side answers it in one ``node`` run (sdks/typescript/test/rules_cli.ts, built by ``make
install``), and every answer must be the Python SDK's. The fixed cases are in
libs/orra_events/contract_cases.

JSON cannot tell ``1.0`` from ``1`` once parsed, so floats here are never integral below
1e16 (documented in sdks/typescript/README.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orra_events import decode
from orra_events.errors import DecodeError
from orra_events.registrations import definition_hash
from orra_sdk._results import kv_key

REPO = Path(__file__).resolve().parents[2]
RULES_CLI = REPO / "sdks" / "typescript" / "dist" / "test" / "rules_cli.js"
BATCH = 40

# unassigned code points (Cn) are left out: Node may know a newer Unicode than Python
_text = st.text(alphabet=st.characters(exclude_categories=["Cs", "Cn"]), max_size=12)
_floats = (
    # below 2**51 a float that is not integral; tiny ones (exponent form); from 1e16 on, the
    # float Python keeps and the TypeScript side writes as one (integral there, but no int)
    st.floats(min_value=-(2**51), max_value=2**51).map(lambda x: x + 0.5 if x.is_integer() else x)
    | st.floats(min_value=1e-320, max_value=1e-4)
    | st.floats(min_value=1e16, max_value=1e300)
    | st.floats(min_value=-1e300, max_value=-1e16)
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | _floats
    | _text
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_schemas = st.dictionaries(_text, _json, max_size=3)
_versions = st.builds(
    lambda prefix, numbers: prefix + ".".join(str(n) for n in numbers),
    st.sampled_from(["", "v"]),
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
)
_definitions = st.fixed_dictionaries(
    {
        "name": _text,
        "description": _text,
        "input_schema": _schemas,
        "output_schema": _schemas,
        "revertible": st.booleans(),
        "version": _versions,
        "kind": st.sampled_from(["service", "agent"]),
        "examples": st.lists(_text, max_size=3),
    }
)
_keys = st.text(alphabet=st.sampled_from("ab:._=-Z9 é:"), max_size=10) | _text

_VALID: dict[str, Any] = {
    "type": "task.dispatched",
    "event_id": "d:o_1:t:1",
    "at": 1767225600.5,
    "v": 1,
    "orchestration_id": "o_1",
    "task_id": "t",
    "service": "S",
    "input": {"orderId": "O"},
    "attempt": 1,
    "idempotency_key": "o_1:t",
    "timeout_s": 30.5,
}
_TYPES = [
    "task.dispatched",
    "task.compensating",
    "task.completed",
    "orchestration.aborted",
    "plan.created",
    "no.such",
]


@st.composite
def _messages(draw: st.DrawFn) -> str:
    message = dict(_VALID)
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from([*_VALID, "previous_error", "extra"]))
        action = draw(st.sampled_from(["delete", "replace", "type", "version"]))
        if action == "delete":
            message.pop(field, None)
        elif action == "replace":
            message[field] = draw(_scalars | st.just([]) | st.just({}) | st.just([1, "a"]))
        elif action == "type":
            message["type"] = draw(st.sampled_from(_TYPES) | _scalars)
        else:
            message["v"] = draw(st.integers(-1, 3))
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _ask(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not RULES_CLI.exists():
        pytest.fail(f"needs node and {RULES_CLI.relative_to(REPO)}: run `make install`")
    done = subprocess.run(
        [node, str(RULES_CLI)],
        input=json.dumps(questions, ensure_ascii=False).encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def _python_decode(raw: str) -> dict[str, str]:
    try:
        return {"type": decode(raw.encode()).TYPE}
    except DecodeError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


_SETTINGS = settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(st.lists(_definitions, min_size=BATCH, max_size=BATCH))
def test_both_sdks_hash_a_definition_alike(definitions: list[dict[str, Any]]) -> None:
    answers = _ask([{"kind": "hash", "definition": d} for d in definitions])
    for definition, answer in zip(definitions, answers, strict=True):
        assert answer["hash"] == definition_hash(**definition), answer["canonical"]


@_SETTINGS
@given(st.lists(st.tuples(_text, _keys), min_size=BATCH, max_size=BATCH))
def test_both_sdks_key_an_idempotency_record_alike(pairs: list[tuple[str, str]]) -> None:
    answers = _ask([{"kind": "kv", "service": s, "key": k} for s, k in pairs])
    for (service, key), answer in zip(pairs, answers, strict=True):
        assert answer == {"kv_key": kv_key(service, key)}, (service, key)


@_SETTINGS
@given(st.lists(_messages(), min_size=BATCH, max_size=BATCH))
def test_both_sdks_decode_or_refuse_a_message_alike(raws: list[str]) -> None:
    answers = _ask([{"kind": "decode", "raw": raw} for raw in raws])
    for raw, answer in zip(raws, answers, strict=True):
        assert answer == _python_decode(raw), raw
