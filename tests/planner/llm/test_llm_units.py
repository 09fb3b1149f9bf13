"""Pure parts of the LLM planner: settings, extraction, prompt, templates, grounding."""

from __future__ import annotations

import pytest

from orra_events import DataField, Plan, PlanTask, ServiceRegistered
from orra_planner.errors import PlannerError, StrategyError
from orra_planner.llm import (
    ExtractError,
    GroundingError,
    LlmSettings,
    cache_key,
    extract_json,
    match_groundings,
    normalise_action,
    parallel_groups,
    parse_groundings,
    response_format,
)
from orra_planner.llm.cache import fill_template, make_template
from orra_planner.llm.client import LlmCallError, retry_after_s
from orra_planner.llm.prompt import AnswerError, NotActionable, parse_answer

# --- settings ----------------------------------------------------------------------------


def test_settings_nothing_configured_is_disabled():
    settings = LlmSettings.from_env({})
    assert not settings.enabled
    assert settings.timeout_s == 60.0
    assert settings.max_attempts == 3
    assert settings.max_retries == 4
    assert settings.structured == "auto"
    assert settings.cache
    assert not settings.semantic_cache


def test_settings_model_alone_is_not_enough():
    assert not LlmSettings.from_env({"ORRA_LLM_MODEL": "m"}).enabled
    assert not LlmSettings.from_env({"ORRA_LLM_BASE_URL": "http://x/v1"}).enabled


def test_settings_orra_names_win_over_openai_fallbacks():
    env = {
        "OPENAI_BASE_URL": "http://openai/v1",
        "OPENAI_API_KEY": "sk-openai",
        "ORRA_LLM_MODEL": "gpt-x",
    }
    s = LlmSettings.from_env(env)
    assert s.enabled
    assert (s.base_url, s.api_key) == ("http://openai/v1", "sk-openai")
    s = LlmSettings.from_env({**env, "ORRA_LLM_BASE_URL": "http://ollama:11434/v1"})
    assert s.base_url == "http://ollama:11434/v1"
    # A local endpoint needs no key.
    assert LlmSettings.from_env({"ORRA_LLM_BASE_URL": "http://o/v1", "ORRA_LLM_MODEL": "m"}).enabled


def test_settings_knobs():
    s = LlmSettings.from_env(
        {
            "ORRA_LLM_TIMEOUT_S": "12.5",
            "ORRA_LLM_MAX_ATTEMPTS": "5",
            "ORRA_LLM_MAX_RETRIES": "0",
            "ORRA_LLM_STRUCTURED": "off",
            "ORRA_PLAN_CACHE": "off",
            "ORRA_PLAN_CACHE_SIMILARITY": "0.92",
            "ORRA_LLM_EMBEDDING_MODEL": "e",
        }
    )
    assert (s.timeout_s, s.max_attempts, s.max_retries) == (12.5, 5, 0)
    assert s.structured == "off"
    assert not s.cache
    assert s.cache_similarity == 0.92
    assert not s.semantic_cache  # the cache is off


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORRA_LLM_TIMEOUT_S", "soon"),
        ("ORRA_LLM_MAX_ATTEMPTS", "0"),
        ("ORRA_LLM_STRUCTURED", "maybe"),
        ("ORRA_PLAN_CACHE", "sometimes"),
        ("ORRA_PLAN_CACHE_SIMILARITY", "1.5"),
    ],
)
def test_settings_reject_nonsense(name, value):
    with pytest.raises(ValueError, match=name):
        LlmSettings.from_env({name: value})


# --- extraction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        'Sure! {"a": 1} hope that helps',
        '```json\n{"a": 1}\n```',
        '```\n{"a": 1}\n```',
        '<think>maybe {"a": 2}? no</think>{"a": 1}',
        '<think>{"b": {"c": "}"}}</think>\nAnswer:\n```json\n{"a": 1}\n```',
        'text {not json} then {"a": 1}',
        '{"s": "a } in a string", "a": 1}',
    ],
)
def test_extract_json(text):
    assert extract_json(text)["a"] == 1


@pytest.mark.parametrize(
    "text", ["", "no json here", '<think>{"a": 1}</think>', "[1, 2]", "<think>cut"]
)
def test_extract_json_failures(text):
    with pytest.raises(ExtractError):
        extract_json(text)


# --- answers and groups ------------------------------------------------------------------


def test_parallel_groups_are_dependency_levels():
    tasks = [
        PlanTask(id="a", service="S", input={"x": 1}),
        PlanTask(id="b", service="S", input={"x": "$a.y"}),
        PlanTask(id="c", service="S", input={"x": 2}),
        PlanTask(id="d", service="S", input={"x": ["$b.z", {"k": "$c.w"}]}),
    ]
    assert parallel_groups(tasks) == [["a", "c"], ["b"], ["d"]]
    cyclic = [
        PlanTask(id="a", service="S", input={"x": "$b.y"}),
        PlanTask(id="b", service="S", input={"x": "$a.y"}),
    ]
    assert parallel_groups(cyclic) is None
    assert parallel_groups([PlanTask(id="a", service="S", input={"x": "$zz.y"})]) is None


def test_parse_answer_shapes():
    assert parse_answer({"not_actionable": True, "reason": "nope"}) == NotActionable("nope")
    plan = parse_answer(
        {
            "not_actionable": False,
            "reason": "",
            "tasks": [{"id": "a", "service": "S", "input": {"x": 1, "o": None}}],
            "parallel_groups": [],
        }
    )
    assert isinstance(plan, Plan)
    assert plan.tasks[0].input == {"x": 1}  # null optional fields of strict outputs dropped
    assert plan.parallel_groups == [["a"]]
    with pytest.raises(AnswerError, match="tasks"):
        parse_answer({"plan": []})
    with pytest.raises(AnswerError, match="input"):
        parse_answer({"tasks": [{"id": "a", "service": "S", "input": 3}]})


def _svc(name: str, input_schema: dict) -> ServiceRegistered:
    return ServiceRegistered(
        event_id="e", service=name, description="d", input_schema=input_schema, output_schema={}
    )


def test_response_format_strict_when_schemas_allow():
    fmt = response_format(
        [
            _svc(
                "A",
                {
                    "type": "object",
                    "properties": {
                        "n": {"type": "integer"},
                        "s": {"type": "string"},
                        "opt": {"type": "boolean"},
                    },
                    "required": ["n", "s"],
                },
            )
        ]
    )
    assert fmt["json_schema"]["strict"] is True
    task = fmt["json_schema"]["schema"]["properties"]["tasks"]["items"]
    props = task["properties"]["input"]["properties"]
    assert task["properties"]["service"] == {"type": "string", "enum": ["A"]}
    assert props["s"] == {"type": "string"}
    # A non-string field may hold a $task.field reference.
    assert {"type": "integer"} in props["n"]["anyOf"]
    assert any(o.get("pattern") for o in props["n"]["anyOf"])
    assert {"type": "null"} in props["opt"]["anyOf"]
    assert task["properties"]["input"]["required"] == ["n", "s", "opt"]


def test_response_format_loose_for_open_schemas():
    fmt = response_format([_svc("A", {"type": "object", "additionalProperties": True})])
    assert fmt["json_schema"]["strict"] is False
    task = fmt["json_schema"]["schema"]["properties"]["tasks"]["items"]
    assert task["properties"]["service"]["enum"] == ["A"]


# --- cache templates ---------------------------------------------------------------------


def test_normalise_action_and_key():
    assert normalise_action("  Process NEW order,   and ship!! ") == "process new order and ship"
    services = [_svc("A", {})]
    k1 = cache_key("Ship it!", ["b", "a"], services)
    k2 = cache_key("ship   IT", ["a", "b"], services)
    assert k1.key == k2.key
    assert cache_key("Ship it", ["a"], services).key != k1.key
    assert cache_key("Ship it", ["a", "b"], [_svc("B", {})]).key != k1.key


def test_template_round_trip_only_exact_values():
    plan = Plan(
        tasks=[
            PlanTask(
                id="p",
                service="Pay",
                input={"orderId": "O1", "qty": 1, "note": "O1x", "items": [{"sku": "S1"}]},
            ),
            PlanTask(
                id="d", service="Ship", input={"orderId": "O1", "ok": "$p.status", "flag": True}
            ),
        ],
        parallel_groups=[["p"], ["d"]],
    )
    data = [DataField("orderId", "O1"), DataField("count", 1.0), DataField("sku", "S1")]
    entry = make_template(plan, data)
    assert entry is not None
    assert {(s.task, tuple(s.path), s.field) for s in entry.slots} == {
        ("p", ("orderId",), "orderId"),
        ("p", ("items", 0, "sku"), "sku"),
        ("d", ("orderId",), "orderId"),
    }  # qty 1 is not the float 1.0; "O1x" is not "O1"
    filled = fill_template(
        entry, [DataField("orderId", "O2"), DataField("count", 2.0), DataField("sku", "S2")]
    )
    assert filled is not None
    assert filled.tasks[0].input == {
        "orderId": "O2",
        "qty": 1,
        "note": "O1x",
        "items": [{"sku": "S2"}],
    }
    assert filled.tasks[1].input == {"orderId": "O2", "ok": "$p.status", "flag": True}
    assert entry.tasks[0].input["orderId"] == "O1"  # the template is not mutated


def test_ambiguous_values_are_not_cached():
    plan = Plan(tasks=[PlanTask(id="p", service="Pay", input={"a": "X"})], parallel_groups=[["p"]])
    assert make_template(plan, [DataField("a", "X"), DataField("b", "X")]) is None


# --- retry-after -------------------------------------------------------------------------


def test_retry_after_parsing():
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None


# --- grounding ---------------------------------------------------------------------------

YAML = """
name: shop
use_cases:
  - action: "Process order {orderId} and arrange delivery"
    intent: ship it
  - action: "Refund order {orderId}"
---
name: support
strict: true
useCases:
  - action: "Answer customer question about {topic}"
"""


def test_parse_groundings_multi_document_and_aliases():
    shop, support = parse_groundings(YAML)
    assert shop.name == "shop"
    assert len(shop.use_cases) == 2
    assert support.strict
    assert support.use_cases[0].action.startswith("Answer")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [", "YAML"),
        ("- a\n- b", "mapping"),
        ("name: x\nuse-cases: []", "no use cases"),
        ("name: 'bad name!'\nuse-cases: [{action: a}]", "name"),
        ("name: x\nuse-cases: [{action: a, bogus: 1}]", "bogus"),
        ("", "no grounding"),
    ],
)
def test_parse_groundings_errors(text, message):
    with pytest.raises(GroundingError, match=message):
        parse_groundings(text)


def test_match_template_and_overlap_and_strict():
    groundings = parse_groundings(YAML)
    result = match_groundings("process ORDER ord-9 and arrange delivery.", ["orderId"], groundings)
    assert result.matches[0].score == 1.0
    assert result.matches[0].params == {"orderId": "ord-9"}
    # Only the strict grounding refuses: no strict use case matched.
    assert result.strict_violations == ["support"]
    loose = match_groundings("please refund the order now", [], groundings)
    assert [m.use_case.action for m in loose.matches] == ["Refund order {orderId}"]
    ok = match_groundings("Answer customer question about billing", [], groundings)
    assert not ok.not_actionable
    assert match_groundings("order", [], groundings).matches == []


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "also"),
    [
        (ExtractError("no JSON"), ValueError),
        (AnswerError("no tasks"), ValueError),
        (LlmCallError("rate limited", retryable=True, status_code=429), Exception),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_llm_errors_derive_from_the_planner_root_exception(
    error: Exception, also: type[Exception]
) -> None:
    assert isinstance(error, PlannerError)
    assert isinstance(error, also)  # what callers caught before still catches them
    assert not isinstance(error, StrategyError)  # not taken for a transient strategy fault
