"""Pieces shared by the LLM backends: option parsing, token estimates, usage stats."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.errors import backend_errors as backend_errors  # one mapping, planners' too
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.options import option_problems, options_message

OptionsT = TypeVar("OptionsT", bound="BackendOptions")


class BackendOptions(BaseModel):
    """Base of each backend's ``options:`` model; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def refuse_reserved(given: Mapping[str, Any], reserved: Mapping[str, str], lead: str,
                    field: str) -> None:
    """Refuse the keys of an option that passes fields through to the engine or server
    (``extra_body``, ``sampling_params``) which Ponder sets itself from a step.

    :param reserved: each such key, with where its value comes from (``set from the
        step's `max_tokens```).
    :param lead: the message's start (``Ponder sends``).
    :raises ValueError: naming each reserved key given, for the option's validator.
    """
    taken = [f"{key!r} ({reserved[key]})" for key in given if key in reserved]
    if taken:
        raise ValueError(f"{lead} {', '.join(taken)}; leave it out of {field}")


def parse_options(model: type[OptionsT], options: dict[str, Any], backend: str) -> OptionsT:
    """Validate a ``ModelConfig.options`` mapping against a backend's options model.

    The message words each problem as ``ponder validate`` does
    (:func:`~orchestrator.spec.options.option_problems`, which the registry runs on
    the backend's ``options_model``), so a run that was never validated says the same.

    :param model: the backend's options model.
    :param options: the raw mapping from the workflow.
    :param backend: the backend's name (its entry point's), for the message.
    :returns: the validated options.
    :raises ConfigError: naming each bad key and its value.
    """
    try:
        return model.model_validate(options)
    except ValidationError:
        problems = option_problems(model, options, f"{backend} backend")
        raise ConfigError(options_message(problems)) from None


#: the sampling temperatures every backend takes (OpenAI's range)
MAX_TEMPERATURE = 2.0


def check_request(request: LLMRequest, backend: str) -> None:
    """Refuse settings no engine can honour, before any work.

    Workflow files cannot hold them (the step's fields are bounded), but requests built in
    code can: llama.cpp takes ``max_tokens`` 0 or less as "until the context is full",
    an OpenAI-compatible server may too, and the simulated engine counted negative tokens.

    :param request: the request about to be served.
    :param backend: the backend's name, for the message.
    :raises ConfigError: naming the offending value.
    """
    problem = ""
    if request.max_tokens < 1:
        problem = f"max_tokens must be at least 1, not {request.max_tokens}"
    elif not (math.isfinite(request.temperature)
              and 0 <= request.temperature <= MAX_TEMPERATURE):
        problem = f"temperature must be from 0 to {MAX_TEMPERATURE:g}, not {request.temperature}"
    elif request.top_p is not None and not (math.isfinite(request.top_p)
                                            and 0 < request.top_p <= 1):
        problem = f"top_p must be above 0 and at most 1, not {request.top_p}"
    elif request.n < 1:
        problem = f"n must be at least 1, not {request.n}"
    if problem:
        raise ConfigError(f"{backend} backend: {problem}")


def samples_finish(reasons: Sequence[str | None]) -> str | None:
    """The finish reason of an answer of several samples (``n > 1``): ``length`` when any
    sample stopped at its token limit, else the first sample's.

    A run reports a step whose answer stopped at ``max_tokens`` (its text may be cut
    off); with the first sample's reason alone, samples cut after a first that ended
    went unreported.

    :param reasons: each sample's finish reason, in sample order.
    """
    if "length" in reasons:
        return "length"
    return reasons[0] if reasons else None


#: engines with integer priorities (vLLM) get Ponder's priorities in these units, so
#: priorities that differ by a millisecond keep their order (see :func:`engine_int`)
ENGINE_PRIORITY_SCALE = 1000


def engine_int(priority: float) -> int:
    """vLLM's priority of a call (in process or through its server): an integer, lower
    served first, from Ponder's ``priority`` (larger = more urgent) in thousandths, so
    that priorities less than a second apart (critical paths of 0.3 s and 0.6 s) keep
    their order."""
    return -round(priority * ENGINE_PRIORITY_SCALE)


def chat_text(messages: list[dict[str, str]]) -> str:
    """The messages as one prompt text (``<|role|>`` lines), the form whose prefixes the
    simulated engines cache."""
    return "".join(f"<|{m.get('role', 'user')}|>\n{m.get('content', '')}\n" for m in messages)


def block_hashes(text: str, block_chars: int) -> tuple[int, ...]:
    """Hash chain of the full ``block_chars``-character blocks of a prompt text: equal
    prefixes give equal leading hashes (automatic prefix caching's block keys)."""
    out: list[int] = []
    previous = b""
    for start in range(0, len(text) - block_chars + 1, block_chars):
        digest = hashlib.blake2b(previous + text[start:start + block_chars].encode(),
                                 digest_size=8).digest()
        out.append(int.from_bytes(digest, "big"))
        previous = digest
    return tuple(out)


class PrefixCache:
    """The prompt blocks an engine keeps after a request (LRU, ``capacity`` blocks).

    A simulated backend owns one; backends that model one server may share one object.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def hits(self, hashes: Sequence[int]) -> int:
        """How many leading blocks of a prompt are cached (they count as used)."""
        count = 0
        for h in hashes:
            if h not in self._blocks:
                break
            self._blocks.move_to_end(h)
            count += 1
        return count

    def add(self, hashes: Sequence[int]) -> None:
        """Keep a computed prompt's blocks, evicting the least recently used."""
        for h in hashes:
            self._blocks[h] = None
            self._blocks.move_to_end(h)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)


def last_user_message(messages: list[dict[str, str]]) -> str:
    """The content of the last ``user`` message, or ``""`` when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""


@dataclass(slots=True)
class BackendStats:
    """Work a backend instance has done, cancelled requests included.

    :param requests: requests started.
    :param completed: requests that returned a response.
    :param cancelled: requests cancelled (or abandoned by their consumer) before the end.
    :param failed: requests that raised.
    :param prompt_tokens: prompt tokens processed, partial prefills included.
    :param completion_tokens: tokens decoded, the partial work of cancelled requests included.
    :param max_active: the most requests in flight at once at the engine.
    :param cached_prompt_tokens: prompt tokens served from a prefix cache (not computed).
    """

    requests: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_active: int = 0
    cached_prompt_tokens: int = 0
