"""orra_events.tracing and orra_events.telemetry: off unless configured, derived span ids.

A tracer provider, once installed, stays for the life of a process: every test that needs
one runs its own Python process, so that the others (and the in-process dispatcher and SDK
tests on the same worker) keep running untraced.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orra_events import telemetry, tracing
from tests.fresh_process import run_for_result


def _run(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints ``RESULT <json>``, returned here."""
    return run_for_result(["-c", code], **env)


@given(
    trace_id=st.integers(min_value=1, max_value=2**128 - 1),
    parts=st.lists(st.one_of(st.text(max_size=12), st.integers()), max_size=4),
)
def test_derived_span_ids_are_64_bit_non_zero_and_repeatable(
    trace_id: int, parts: list[str | int]
) -> None:
    first = tracing.derived_span_id(trace_id, *parts)
    assert 0 < first < 2**64
    assert tracing.derived_span_id(trace_id, *parts) == first


def test_derived_span_ids_differ_by_trace_and_by_what_they_name() -> None:
    ids = {
        tracing.derived_span_id(1, "group", "o_a", 0),
        tracing.derived_span_id(1, "group", "o_a", 1),
        tracing.derived_span_id(1, "group", "o_b", 0),
        tracing.derived_span_id(2, "group", "o_a", 0),
        tracing.derived_span_id(1, "attempt", "o_a", "payment", 1),
        tracing.derived_span_id(1, "attempt", "o_a", "payment", 2),
    }
    assert len(ids) == 6


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_configured_only_by_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for name in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert telemetry.configured() is expected


def test_off_by_default_nothing_is_made_and_the_sdk_is_not_loaded() -> None:
    got = _run(
        "import json, sys\n"
        "from orra_events import telemetry, tracing\n"
        "import orra_dispatcher.handlers, orra_sdk, orra_planner.handlers\n"
        "assert telemetry.install('test') is None\n"
        "tp = {'traceparent': '00-' + '1' * 32 + '-' + '2' * 16 + '-01'}\n"
        "print('RESULT', json.dumps({\n"
        "  'on': tracing.on(),\n"
        "  'shared_null_span': tracing.span('x') is tracing.span('y'),\n"
        "  'handler_span_null': tracing.handler_span(tp, 'handle', None, 'S')\n"
        "      is tracing.span('z'),\n"
        "  'passed_on': tracing.passed_on(tp),\n"
        "  'current': tracing.current_headers(),\n"
        "  'sdk_loaded': any(m.startswith('opentelemetry.sdk') for m in sys.modules),\n"
        "  'propagators_loaded': 'opentelemetry.propagate' in sys.modules,\n"
        "}))\n"
    )
    assert got == {
        "on": False,
        "shared_null_span": True,
        "handler_span_null": True,
        "passed_on": None,
        "current": {},
        "sdk_loaded": False,
        "propagators_loaded": False,
    }


_RESTART = """
import json
import msgspec
from orra_events import telemetry, tracing
assert telemetry.install('test') is not None and tracing.on()
from orra_dispatcher import spans
from orra_dispatcher.domain import Policy, apply
from orra_dispatcher.store import decode_snapshot, encode_snapshot
from tests.dispatcher.conftest import plan_created, seed_plan

T, P = 'ab' * 16, 'cd' * 8
class Msg:
    headers = {'traceparent': f'00-{T}-{P}-01', 'Nats-Msg-Id': 'p:o_t'}
event = plan_created(seed_plan(), 'o_t')
outcome = spans.adopt_outcome(apply(None, event, Policy(), 100.0), event, Msg())
state = outcome.state
first = spans.headers_for(outcome.emit, state)
# another dispatcher process, after a restart: the stored snapshot only
again = spans.headers_for(outcome.emit, decode_snapshot(encode_snapshot(state)))
trace_id = int(T, 16)
# payment fails; its retry is dispatched by a timer, with no message to take a context from
from orra_dispatcher.domain import Timer
from orra_events import TaskFailed
failed = TaskFailed(
    event_id='r:o_t:payment:1', orchestration_id='o_t', task_id='payment', service='S',
    error='declined', attempt=1, idempotency_key='o_t:payment', started_at=0.0,
    duration_ms=1.0, retryable=True,
)
waiting = apply(state, failed, Policy(), 101.0).state
retry = apply(
    decode_snapshot(encode_snapshot(waiting)),
    Timer(orchestration_id='o_t', task_id='payment', kind='retry', attempt=2, due_at=102.0),
    Policy(), 102.0,
)
(second,) = [e for e in retry.emit if e.TYPE == 'task.dispatched']
(retry_headers,) = [
    h for e, h in zip(retry.emit, spans.headers_for(retry.emit, retry.state))
    if e.TYPE == 'task.dispatched'
]
print('RESULT', json.dumps({
    'retry': [second.attempt, retry_headers['traceparent']],
    'retry_derived': (
        f"00-{T}-{tracing.derived_span_id(trace_id, 'attempt', 'o_t', 'payment', 2):016x}-01"
    ),
    'kept': state.trace,
    'same_after_restart': first == again,
    'dispatched': [e.task_id for e in outcome.emit],
    'traceparents': [h.get('traceparent') for h in first],
    'derived': [
        f"00-{T}-{tracing.derived_span_id(trace_id, 'attempt', 'o_t', e.task_id, 1):016x}-01"
        for e in outcome.emit
    ],
}))
"""


def test_with_tracing_on_a_restarted_dispatcher_and_a_timer_retry_name_the_same_spans() -> None:
    got = _run(_RESTART, OTEL_TRACES_EXPORTER="console")
    assert got["kept"] == {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}
    assert got["same_after_restart"] is True
    # the first group's work messages carry their attempt spans, of derived ids
    assert sorted(got["dispatched"]) == ["inventory", "payment"]  # type: ignore[arg-type]
    assert got["traceparents"] == got["derived"]
    # a retry fired by a timer (no message) continues the trace from the snapshot alone
    assert got["retry"] == [2, got["retry_derived"]]
