"""LocalBackend on the bundled SmolLM2-135M GGUF: generation, JSON grammar, cancellation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from jsonschema import Draft202012Validator

from executors.engines.pool import is_engine_fault
from executors.llm import LocalBackend
from executors.llm.local import MAX_THREADS, LocalOptions, _LoadedModel, padded_ctx
from orchestrator.errors import BackendError, BackendHTTPError, ConfigError
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, Usage
from orchestrator.spec.models import ModelConfig
from orchestrator.spec.options import option_problems

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
    """A 400, the request's own fault: a pool of local engines fails it at once rather
    than moving it to each engine and taking each out."""
    backend = local(n_ctx=256)
    with pytest.raises(BackendHTTPError, match="local backend") as info:
        await backend.complete(ask("word " * 400, max_tokens=4))
    assert info.value.status == 400 and not is_engine_fault(info.value)
    assert backend.stats.failed == 1
    assert str(info.value).endswith("exceed context window of 256 (shorten the prompt or "
                                    "raise `options: {n_ctx: ...}`)")


async def test_the_context_is_n_ctx_rounded_up_by_llama_cpp(gguf_path: Path) -> None:
    """llama.cpp rounds the context up to a multiple of 256, llama-cpp-python sized its
    token buffer by the n_ctx asked for: a prompt longer than n_ctx but within the
    context failed on a numpy error ("could not broadcast ... into shape (0,)")."""
    backend = local(n_ctx=300)
    response = await backend.complete(ask("Repeat: " + "apple " * 340, max_tokens=4))
    assert 300 < response.prompt_tokens < 512
    assert backend._model is not None and backend._model.n_ctx == 512 == padded_ctx(300)
    assert len(backend._model.llama.input_ids) == 512  # the buffer has room for it all
    # beyond the context: refused in words that say where 512 comes from
    with pytest.raises(BackendError) as info:
        await backend.complete(ask("apple " * 600, max_tokens=4))
    assert str(info.value).endswith(
        "exceed context window of 512 (n_ctx 300, rounded up by llama.cpp; "
        "shorten the prompt or raise `options: {n_ctx: ...}`)")


async def test_an_answer_cut_by_the_context_says_so(gguf_path: Path) -> None:
    """A decode stops when prompt and answer fill the context, before max_tokens: the
    response says it was the context, not max_tokens, that cut it."""
    backend = local(n_ctx=256)
    response = await backend.complete(ask("Repeat these words: " + "apple " * 220,
                                          max_tokens=200, temperature=0))
    assert response.finish_reason == "length"
    assert response.completion_tokens < 200
    assert response.prompt_tokens + response.completion_tokens == 256
    assert response.meta == {"stopped_at": "n_ctx", "n_ctx": 256}
    # an answer cut at max_tokens is not
    short = await backend.complete(ask("Say hello.", max_tokens=2))
    assert short.finish_reason == "length" and short.meta == {}


async def test_a_step_cut_by_the_context_records_it(gguf_path: Path) -> None:
    """The step's meta carries it, for `ponder run` to tell (finish_reason stays
    `length`: the answer may be cut off all the same)."""
    from orchestrator import Workflow

    wf = Workflow("ctx", models={"default": {"backend": "local",
                                             "options": {"n_ctx": 256, "n_threads": 1}}})
    wf.llm("a", prompt="Repeat these words: " + "apple " * 220, max_tokens=200)
    result = await wf.run()
    meta = result.steps[0].meta or {}
    assert (meta["finish_reason"], meta["stopped_at"], meta["n_ctx"]) == ("length", "n_ctx",
                                                                          256)


class _OverflowingLlama:
    """A llama whose decode fails as llama-cpp-python's did on an overflowing buffer."""

    def n_ctx(self) -> int:
        return 512

    def create_chat_completion(self, **kwargs: Any) -> Any:
        raise ValueError("could not broadcast input array from shape (82,) into shape (0,)")


async def test_a_buffer_overflow_reads_as_a_context_overflow(gguf_path: Path) -> None:
    backend = local(n_ctx=300)
    backend._model = _LoadedModel(cast(Any, _OverflowingLlama()), anyio.Semaphore(1))
    with pytest.raises(BackendError) as info:
        await backend.complete(ask("Hi", max_tokens=4))
    assert str(info.value) == (
        f"local backend ({gguf_path.name}): the prompt and answer exceed the context window "
        "of 512 tokens (n_ctx 300, rounded up by llama.cpp; shorten the prompt or raise "
        "`options: {n_ctx: ...}`)")


class _RecordingLlama:
    """The loaded llama, keeping the arguments of every chat completion asked of it."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.asked: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> Any:
        self.asked.append(kwargs)
        return self.llama.create_chat_completion(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llama, name)


async def test_top_p_is_passed_only_when_set(gguf_path: Path) -> None:
    """Without `top_p`, llama-cpp-python's own default (0.95) holds."""
    backend = local()
    loaded = await backend._loaded()
    llama = _RecordingLlama(loaded.llama)
    backend._model = _LoadedModel(cast(Any, llama), loaded.lock)
    response = await backend.complete(ask("Say hello.", max_tokens=4, temperature=0.7,
                                          top_p=0.5))
    assert response.text
    await backend.complete(ask("Say hello.", max_tokens=4))
    assert [k.get("top_p", "unset") for k in llama.asked] == [0.5, "unset"]


async def test_sampling_options_reach_llama_cpp(gguf_path: Path) -> None:
    """`options.sampling` goes with every request; `top_k: 1` leaves one token to draw
    from, so samples at a high temperature with other seeds are the same text."""
    backend = local(sampling={"top_k": 1, "repeat_penalty": 1.0})
    loaded = await backend._loaded()
    llama = _RecordingLlama(loaded.llama)
    backend._model = _LoadedModel(cast(Any, llama), loaded.lock)
    texts = {(await backend.complete(ask("Name a fruit.", max_tokens=12, temperature=1.5,
                                         seed=seed))).text for seed in (1, 2, 3)}
    assert len(texts) == 1
    assert all((k["top_k"], k["repeat_penalty"]) == (1, 1.0) for k in llama.asked)
    assert "min_p" not in llama.asked[0]  # unset: llama-cpp-python's default


def test_sampling_options_are_validated(gguf_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        local(sampling={"top_kk": 1})
    assert str(info.value) == (
        "local backend options: unknown option 'sampling.top_kk' (known: top_k, min_p, "
        "typical_p, repeat_penalty, presence_penalty, frequency_penalty)")
    assert option_problems(LocalOptions, {"sampling": {"min_p": 2}}, "local backend") == [
        (("sampling", "min_p"), "local backend options: sampling.min_p: Input should be "
                                "less than or equal to 1 (got 2)")]


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


def test_an_absurd_thread_count_is_refused(gguf_path: Path) -> None:
    """n_threads: 100000 killed the process (libgomp could not create the threads), 5000
    never finished a token: above ggml's limit it is refused before any run."""
    local(n_threads=MAX_THREADS)
    for bad in (MAX_THREADS + 1, 100000):
        with pytest.raises(ConfigError) as info:
            local(n_threads=bad)
        assert str(info.value) == (
            "local backend options: n_threads: at most 512 (llama.cpp's limit; more threads "
            f"than the machine's cores only slow the decode), not {bad}")
    # as `ponder validate` words it, at the option
    assert option_problems(LocalOptions, {"n_threads": 5000}, "local backend") == [
        (("n_threads",), "local backend options: n_threads: at most 512 (llama.cpp's limit; "
                         "more threads than the machine's cores only slow the decode), not "
                         "5000")]


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
