"""LocalBackend on the bundled SmolLM2-135M GGUF: generation, JSON grammar, cancellation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator

from executors.llm import LocalBackend
from orchestrator.errors import BackendError, ConfigError
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def local(**options: Any) -> LocalBackend:
    return LocalBackend(ModelConfig(backend="local", options={"n_threads": 1, **options}))


def ask(prompt: str, **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


async def test_short_generation(gguf_path: Path) -> None:
    backend = local()
    assert isinstance(backend, LLMBackend)
    assert LocalBackend.default_concurrency == 1
    response = await backend.complete(ask("Say hello.", max_tokens=8, temperature=0))
    again = await backend.complete(ask("Say hello.", max_tokens=8, temperature=0))
    await backend.aclose()
    assert response.text.strip()
    assert response.text == again.text  # greedy decoding is repeatable
    assert response.prompt_tokens > 5
    assert response.completion_tokens == 8
    assert response.finish_reason == "length"
    assert response.ttft_s is not None and 0 < response.ttft_s <= response.latency_s
    assert response.model == gguf_path.stem
    assert backend.stats.completed == 2


async def test_json_schema_is_grammar_constrained(gguf_path: Path) -> None:
    backend = local()
    response = await backend.complete(
        ask("Describe a person.", max_tokens=80, temperature=0, json_schema=PERSON)
    )
    await backend.aclose()
    Draft202012Validator(PERSON).validate(json.loads(response.text))


async def test_stream_matches_the_final_text(gguf_path: Path) -> None:
    backend = local()
    pieces = []
    final = None
    async for chunk in backend.stream(ask("Count to five.", max_tokens=12, temperature=0)):
        if chunk.final is None:
            pieces.append(chunk.text)
        else:
            final = chunk.final
    assert final is not None
    assert len(pieces) > 1
    assert "".join(pieces) == final.text


async def test_cancellation_stops_the_decode(gguf_path: Path) -> None:
    backend = local()
    await backend.complete(ask("Hi", max_tokens=1))  # load the model outside the timing
    received = 0
    with anyio.CancelScope() as scope:
        async for _ in backend.stream(
            ask("Write a very long story about a dragon.", max_tokens=1000, temperature=0)
        ):
            received += 1
            if received == 4:
                cancelled_at = anyio.current_time()
                scope.cancel()
    stopped_after = anyio.current_time() - cancelled_at
    assert stopped_after < 1.0  # at most one token (generous for a loaded CI machine)
    assert backend.stats.cancelled == 1
    decoded = backend.stats.completion_tokens
    assert decoded < 1 + 4 + 3  # the warm-up + what was read + slack
    await anyio.sleep(0.3)
    assert backend.stats.completion_tokens == decoded  # nothing decodes in the background
    # The model is free again at once.
    with anyio.fail_after(5):
        response = await backend.complete(ask("Hi", max_tokens=2))
    assert response.completion_tokens == 2


async def test_the_requests_counter_is_the_engines_up_to_a_cancellation(
        gguf_path: Path) -> None:
    await local().complete(ask("Hi", max_tokens=1))  # loads the shared model
    backend = local()
    counted = Usage()
    received = 0
    with anyio.CancelScope() as scope:
        async for _ in backend.stream(ask("Tell a long story.", max_tokens=500,
                                          usage=counted)):
            received += 1
            if received == 3:
                scope.cancel()
    assert backend.stats.cancelled == 1
    # the prompt, and every token sampled until it stopped
    assert counted.prompt_tokens == backend.stats.prompt_tokens > 0
    assert counted.completion_tokens == backend.stats.completion_tokens >= 3


async def test_cancelling_complete(gguf_path: Path) -> None:
    backend = local()
    await backend.complete(ask("Hi", max_tokens=1))
    start = anyio.current_time()
    with anyio.move_on_after(0.2):
        await backend.complete(ask("Write a very long story.", max_tokens=1000, temperature=0))
    # the prompt, or one token, finishes first; bounds leave room for a loaded CI machine
    assert anyio.current_time() - start < 5
    assert backend.stats.cancelled == 1
    decoded = backend.stats.completion_tokens
    assert decoded < 300  # of 1000 asked for: decoding stopped
    await anyio.sleep(0.3)
    assert backend.stats.completion_tokens == decoded


async def test_models_are_loaded_once(gguf_path: Path) -> None:
    a, b = local(), local()
    await a.complete(ask("Hi", max_tokens=1))
    await b.complete(ask("Hi", max_tokens=1))
    assert a._model is not None and a._model is b._model


async def test_n_samples(gguf_path: Path) -> None:
    response = await local().complete(ask("Name a fruit.", max_tokens=4, temperature=1.0, n=2,
                                          seed=3))
    assert len(response.texts) == 2
    assert 2 <= response.completion_tokens <= 8


async def test_too_long_a_prompt_is_a_backend_error(gguf_path: Path) -> None:
    backend = local(n_ctx=128)
    with pytest.raises(BackendError, match="local backend") as info:
        await backend.complete(ask("word " * 400, max_tokens=4))
    assert backend.stats.failed == 1
    # (llama.cpp rounds n_ctx up to 256)
    assert str(info.value).endswith("exceed context window of 256 (shorten the prompt or "
                                    "raise `options: {n_ctx: ...}`)")


@pytest.mark.parametrize("stream", [False, True])
async def test_max_tokens_below_one_is_refused_before_decoding(gguf_path: Path,
                                                               stream: bool) -> None:
    """llama.cpp takes 0 or less as "until the context is full": a step asking for
    nothing ran the whole context."""
    backend = local()
    request = ask("Say hello.", max_tokens=0)
    with pytest.raises(ConfigError, match="local backend: max_tokens must be at least 1, not 0"):
        if stream:
            async for _ in backend.stream(request):
                pass
        else:
            await backend.complete(request)
    assert backend.stats.requests == 0


def test_options_are_validated(gguf_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'n_gpu'"):
        local(n_gpu=1)
    with pytest.raises(ConfigError, match="is not a file"):
        local(model_path=str(tmp_path / "missing.gguf"))


def test_without_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    config = ModelConfig(backend="local")
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[local\]"') as info:
        LocalBackend(config)
    # in the words `ponder validate` uses for the model's backend (install_hint's)
    assert str(info.value) == LocalBackend.missing_extra(config)


# a grammar llama.cpp refuses used to crash the process at the first token: the step runs
# in a child process so that a regression fails this test instead of killing pytest
_REFUSED_GRAMMAR = """
import json
from orchestrator import Workflow
wf = Workflow("refused")
wf.llm("a", prompt="A price?", max_tokens=8, output_schema={
    "type": "object", "required": ["p"],
    "properties": {"p": {"type": "string", "pattern": "^\\\\$[0-9]+$"}}})
r = wf.run_sync(backend="local")
print(json.dumps({"status": r.status, "error": r.steps[0].error}))
"""


def test_a_grammar_llama_cpp_cannot_parse_fails_the_step(gguf_path: Path) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _REFUSED_GRAMMAR], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "failed"
    assert "llama.cpp cannot parse the grammar" in outcome["error"]
    assert "write [$] instead" in outcome["error"]
