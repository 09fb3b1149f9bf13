"""The deterministic event ids: one function per row of docs/architecture.md, all distinct."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orra_events import ids
from orra_events.plan import TASK_ID_PATTERN
from orra_events.topology import NAME_PATTERN

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

names = st.from_regex(NAME_PATTERN, fullmatch=True)
task_ids = st.from_regex(TASK_ID_PATTERN, fullmatch=True)
any_text = st.text(max_size=12)
numbers = st.integers(min_value=0, max_value=10**6)
urls = st.text(min_size=1, max_size=30).map(lambda s: f"https://example.com/{s}")
kinds = st.sampled_from([ids.RESULT_DELIVERY, "compensation"])
hashes = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)

PARAMETER: dict[str, st.SearchStrategy[Any]] = {
    "orchestration_id": names,
    "task_id": task_ids,
    "attempt": numbers,
    "next_attempt": numbers,
    "n": numbers,
    "seq": numbers,
    "url": urls,
    "kind": kinds,
    "service": names,
    "definition_hash": hashes,
    "stream": names,
    "sequence": numbers,
}
"""What each parameter of an id function may be: subject tokens, plan task ids, counts."""

DETERMINISTIC: list[Callable[..., str]] = [
    ids.action_id,
    ids.plan_id,
    ids.end_id,
    ids.pause_id,
    ids.resume_id,
    ids.compensating_id,
    ids.compensated_id,
    ids.dispatch_id,
    ids.result_id,
    ids.retry_id,
    ids.timeout_id,
    ids.progress_id,
    ids.compensation_id,
    ids.compensation_result_id,
    ids.compensation_abandoned_id,
    ids.compensation_resolved_id,
    ids.unknown_outcome_id,
    ids.webhook_outcome_id,
    ids.webhook_retry_id,
    ids.webhook_job_id,
    ids.registration_id,
    ids.dead_letter_id,
]
"""Every function that builds a ``Nats-Msg-Id`` from its inputs."""

WITH_TASK = [f for f in DETERMINISTIC if "task_id" in inspect.signature(f).parameters]


def _calls(functions: list[Callable[..., str]]) -> st.SearchStrategy[tuple[str, tuple[Any, ...]]]:
    """A function of ``functions`` and arguments for it: (its name, its arguments)."""

    def args_for(f: Callable[..., str]) -> st.SearchStrategy[tuple[str, tuple[Any, ...]]]:
        params = inspect.signature(f).parameters
        return st.tuples(*(PARAMETER[p] for p in params)).map(lambda a: (f.__name__, a))

    return st.one_of(*(args_for(f) for f in functions))


def _id(call: tuple[str, tuple[Any, ...]]) -> str:
    name, args = call
    return str(getattr(ids, name)(*args))


@given(_calls(DETERMINISTIC), _calls(DETERMINISTIC))
def test_distinct_inputs_give_distinct_ids_across_every_row(
    a: tuple[str, tuple[Any, ...]], b: tuple[str, tuple[Any, ...]]
) -> None:
    assert (_id(a) == _id(b)) == (a == b), (a, b)


@given(st.fixed_dictionaries(PARAMETER))
def test_no_two_rows_give_the_same_id_for_the_same_inputs(args: dict[str, Any]) -> None:
    # The same orchestration, task, attempt... through every function: e.g. a retry's id
    # must not be the result id of the attempt it retries.
    built = {
        f.__name__: f(*(args[p] for p in inspect.signature(f).parameters)) for f in DETERMINISTIC
    }
    assert len(set(built.values())) == len(built), built


task_with_colons = st.text(alphabet=st.sampled_from("ab:1"), min_size=1, max_size=8)


@given(st.data())
def test_a_task_id_with_colons_still_gives_distinct_ids(data: st.DataObject) -> None:
    # No valid plan has one (TASK_ID_PATTERN), yet the ids stay apart: the orchestration
    # id comes first and has no ':', and only numbers follow the task id.
    f = data.draw(st.sampled_from(WITH_TASK))
    params = list(inspect.signature(f).parameters)

    def draw_args() -> tuple[Any, ...]:
        return tuple(
            data.draw(task_with_colons if p == "task_id" else PARAMETER[p]) for p in params
        )

    a, b = draw_args(), draw_args()
    assert (f(*a) == f(*b)) == (a == b), (f.__name__, a, b)


@given(names, task_ids, task_ids)
def test_idempotency_keys_of_plan_tasks_never_meet_revert_keys(
    orchestration_id: str, task: str, other: str
) -> None:
    key = ids.idempotency_key(orchestration_id, task)
    assert key != ids.revert_key(orchestration_id, other)
    assert (key == ids.idempotency_key(orchestration_id, other)) == (task == other)


def test_the_revert_key_relies_on_task_ids_without_colons() -> None:
    # Why the plan grammar's task ids matter here: a ':' would let them meet.
    assert ids.idempotency_key("o_1", "pay:revert") == ids.revert_key("o_1", "pay")
    assert not TASK_ID_PATTERN.fullmatch("pay:revert")


def _doc_rows() -> list[tuple[str, str]]:
    """(event_id templates, functions) of every row of the doc's event-id table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Deterministic event ids", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] != "event" and cells[2].startswith("`"):
            rows.append((cells[1], cells[2]))
    return rows


SAMPLE: dict[str, Any] = {
    "orch": "o_abc",
    "task": "payment",
    "attempt": 3,
    "next attempt": 4,
    "n": 2,
    "seq": 7,
    "service": "PaymentService",
    "schema hash": "0123456789abcdef",
}
URL = "https://example.com/hook"


def test_every_row_of_the_doc_table_is_one_function_that_builds_its_id() -> None:
    rows = _doc_rows()
    assert len(rows) >= 18
    for templates, functions in rows:
        shapes = re.findall(r"`([^`]*)`", templates)
        names_ = re.findall(r"`([a-z_]+)`", functions)
        assert names_, functions
        if templates.startswith("random"):
            (name,) = names_
            f = getattr(ids, name)
            assert f() != f()
            continue
        for name, shape in zip(names_, shapes, strict=False):
            assert name in ids.__all__, name
            f = getattr(ids, name)
            params = list(inspect.signature(f).parameters)
            args: list[Any] = []
            expected = shape
            for placeholder in re.findall(r"<([^>]+)>", shape):
                if placeholder == "url hash":
                    args.append(URL)
                    expected = expected.replace("<url hash>", ids.url_hash(URL), 1)
                else:
                    args.append(SAMPLE[placeholder])
                    expected = expected.replace(f"<{placeholder}>", str(SAMPLE[placeholder]), 1)
            assert len(args) <= len(params), (name, shape)
            assert f(*args) == expected, (name, shape)


def test_a_compensation_report_names_its_kind_in_its_webhook_ids() -> None:
    assert ids.webhook_outcome_id("o_1", URL) == f"w:o_1:{ids.url_hash(URL)}"
    assert ids.webhook_outcome_id("o_1", URL, "compensation") == (
        f"w:o_1:compensation:{ids.url_hash(URL)}"
    )
    assert ids.webhook_retry_id("o_1", URL, 2, "compensation") == (
        f"wr:o_1:compensation:{ids.url_hash(URL)}:2"
    )
    assert ids.webhook_job_id("o_1", URL) == f"job:o_1:{ids.url_hash(URL)}"
    assert ids.webhook_job_id("o_1", URL, "compensation") == (
        f"job:compensation:o_1:{ids.url_hash(URL)}"
    )
