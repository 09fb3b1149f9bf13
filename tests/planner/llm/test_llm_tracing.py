"""The LLM call's span follows the OpenTelemetry GenAI conventions (docs/tracing.md).

Traced in a process of its own (a tracer provider stays for a process's life), against
the scripted OpenAI-compatible server of this package's fixtures.
"""

from __future__ import annotations

import json

from tests.fresh_process import run_for_result
from tests.planner.llm.conftest import ScriptedLlm, completion

_CALL = """
import asyncio, json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from orra_planner.llm import LlmSettings
from orra_planner.llm.client import ChatClient

settings = LlmSettings(
    base_url=sys.argv[1], api_key='k', model='test-model', timeout_s=5.0, max_retries=0
)

async def main():
    client = ChatClient(settings)
    try:
        await client.chat(
            [{'role': 'user', 'content': 'SECRET ACTION TEXT'}], response_format=None
        )
    finally:
        await client.aclose()

asyncio.run(main())
(span,) = exporter.get_finished_spans()
print('RESULT', json.dumps({
    'name': span.name, 'kind': span.kind.name, 'attributes': dict(span.attributes),
}))
"""


def _traced_call(llm: ScriptedLlm, **env: str) -> dict[str, object]:
    llm.then(completion('{"tasks": []}', prompt_tokens=321, completion_tokens=54))
    return run_for_result(["-c", _CALL, llm.url], **env)


def test_the_llm_call_is_a_genai_client_span_without_the_prompt(llm_server: ScriptedLlm) -> None:
    span = _traced_call(llm_server)
    assert span["name"] == "chat test-model"
    assert span["kind"] == "CLIENT"
    attributes = span["attributes"]
    assert isinstance(attributes, dict)
    assert {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "test-model",
        "gen_ai.response.model": "test-model",
        "gen_ai.usage.input_tokens": 321,
        "gen_ai.usage.output_tokens": 54,
        "gen_ai.response.finish_reasons": ["stop"],
    }.items() <= attributes.items()
    assert "SECRET ACTION TEXT" not in json.dumps(attributes)


def test_the_prompt_is_recorded_only_when_asked(llm_server: ScriptedLlm) -> None:
    span = _traced_call(llm_server, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="TRUE")
    attributes = span["attributes"]
    assert isinstance(attributes, dict)
    assert "SECRET ACTION TEXT" in attributes["gen_ai.input.messages"]
    assert attributes["gen_ai.output.messages"] == '{"tasks": []}'
