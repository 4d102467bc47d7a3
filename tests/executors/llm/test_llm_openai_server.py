"""OpenAIBackend used as a user would against a real llama.cpp server
(``llama_cpp.server`` on the bundled model, on 127.0.0.1): what it refuses, what it does
not report, and what a server that dies leaves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from typer.testing import CliRunner

from executors.llm import OpenAIBackend
from orchestrator import Workflow
from orchestrator.cli import app
from orchestrator.errors import BackendError, BackendHTTPError, BackendUnavailable, is_retryable
from orchestrator.runtime.contracts import LLMRequest, LLMResponse, Usage, approx_prompt_tokens
from orchestrator.spec.models import ModelConfig

pytestmark = [pytest.mark.anyio, pytest.mark.llama_server]

ROOT = Path(__file__).resolve().parents[3]

PERSON = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
HINT = ("the server does not take response_format json_schema: set "
        "`options: {structured_outputs: json_object}` (llama.cpp's server) or none")


def backend(url: str, **options: Any) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(backend="openai", model="smollm2", base_url=url,
                                     options=options))


def ask(prompt: str, **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


async def test_a_refused_json_schema_fails_at_once_with_the_hint(llama_server_url: str) -> None:
    """llama.cpp's server answers 500 (a validation error of response_format.type)."""
    b = backend(llama_server_url)
    with anyio.fail_after(30), pytest.raises(BackendError) as info:
        await b.complete(ask("Name a person.", max_tokens=16, json_schema=PERSON))
    await b.aclose()
    assert not isinstance(info.value, BackendHTTPError)
    assert not is_retryable(info.value)
    assert "HTTP 500" in str(info.value) and str(info.value).endswith(f"({HINT})")


async def test_a_step_refused_json_schema_is_attempted_once(llama_server_url: str) -> None:
    """It was retried (three attempts by default, with backoff) before the hint showed."""
    wf = Workflow("refused", models={"default": {"backend": "openai", "model": "smollm2",
                                                 "base_url": llama_server_url}})
    wf.llm("person", prompt="Name a person.", output_schema=PERSON, max_tokens=16)
    with anyio.fail_after(60):
        result = await wf.run()
    assert result.status == "failed"
    (step,) = result.steps
    assert step.attempts == 1
    assert step.error is not None and HINT in step.error


async def test_a_streamed_answer_counts_its_prompt(llama_server_url: str) -> None:
    """The server sends no usage chunk; the prompt counted 0 tokens."""
    b = backend(llama_server_url)
    request = ask("Count from one to five.", max_tokens=8, temperature=0)
    final: LLMResponse | None = None
    with anyio.fail_after(30):
        async for chunk in b.stream(request):
            final = chunk.final or final
    await b.aclose()
    assert final is not None
    assert final.prompt_tokens == approx_prompt_tokens(request.messages)
    assert 0 < final.completion_tokens <= 8


async def test_a_server_killed_mid_stream(
        own_llama_server: tuple[subprocess.Popen[bytes], str]) -> None:
    """The text received before the server died is kept on the error, its tokens counted;
    the next call says the server cannot be reached, and why."""
    process, url = own_llama_server
    b = backend(url)
    counted = Usage()
    pieces: list[str] = []
    with anyio.fail_after(60), pytest.raises(BackendUnavailable) as info:
        async for chunk in b.stream(ask("Write a long story about a cat.", max_tokens=400,
                                        temperature=0, usage=counted)):
            pieces.append(chunk.text)
            if len(pieces) == 5:
                process.kill()
                await anyio.to_thread.run_sync(process.wait)
    assert is_retryable(info.value)
    assert str(info.value).startswith(f"{url}/chat/completions: the connection was lost "
                                      "during the stream: ")
    assert info.value.raw_output == "".join(pieces)
    assert counted.completion_tokens == len(pieces) >= 5
    with anyio.fail_after(30), pytest.raises(BackendUnavailable) as after:
        await b.complete(ask("Hi", max_tokens=4))
    await b.aclose()
    assert str(after.value).startswith(f"cannot reach {url}/chat/completions: ")
    assert not str(after.value).endswith(": ")


async def test_a_base_url_with_the_endpoint_says_which_url_to_use(llama_server_url: str
                                                                  ) -> None:
    b = backend(f"{llama_server_url}/chat/completions")
    with anyio.fail_after(30), pytest.raises(BackendHTTPError) as info:
        await b.complete(ask("Hi", max_tokens=4))
    await b.aclose()
    assert str(info.value).endswith(f"use {llama_server_url!r})")


async def test_a_stream_cut_by_another_request_says_how_to_avoid_it(
        own_llama_server: tuple[subprocess.Popen[bytes], str]) -> None:
    """llama.cpp's Python server ends a running stream with [DONE] when another request
    waits (its default --interrupt_requests True): it was reported as a lost connection."""
    _, url = own_llama_server
    b = backend(url)
    first_text = anyio.Event()
    cut: list[BaseException] = []

    async def long_stream() -> None:
        try:
            async for chunk in b.stream(ask("Write a long story about a cat.", max_tokens=400,
                                            temperature=0)):
                first_text.set()
                if chunk.final is not None:
                    raise AssertionError("the stream was not cut")
        except BackendUnavailable as exc:
            cut.append(exc)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(long_stream)
            await first_text.wait()
            second = await b.complete(ask("Hi", max_tokens=4))
    await b.aclose()
    assert second.completion_tokens > 0
    (error,) = cut
    assert is_retryable(error)
    assert "the server cut it" in str(error)
    assert "`--interrupt_requests False`, or give this model `concurrency: 1`" in str(error)
    assert isinstance(error, BackendUnavailable) and error.raw_output


@pytest.mark.parametrize("example", ["parallel_qa", "direct_answer"])
def test_the_planner_examples_run_with_the_example_config(
        llama_server_url: str, example: str, tmp_path: Path) -> None:
    """examples/models/llama_cpp_server.yaml as written (only its URL changed): with the
    server's default repeat_penalty (1.1) the plans went astray (a tool's description
    copied after its call) and all three plan tries failed; in-process they did not."""
    config = yaml.safe_load((ROOT / "examples" / "models" / "llama_cpp_server.yaml")
                            .read_text(encoding="utf-8"))
    config["base_url"] = llama_server_url
    (tmp_path / "server.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, [
        "run", str(ROOT / "examples" / "planners" / f"{example}.yaml"),
        "--model", f"default={tmp_path / 'server.yaml'}", "--json", "--db", "memory://"])
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded", doc["error"]
    planned = [s for s in doc["steps"] if s["id"].startswith("answer__")]
    assert planned and all(s["status"] == "succeeded" for s in planned)
