"""Whose fault an in-process engine's error is: the rule that its ``ValueError`` or
``TypeError`` is the request's (HTTP 400), kept here once for every backend that reads it.

vLLM's and llama.cpp's Python engines refuse a prompt too long for their context, a bad
sampling parameter or a schema they cannot follow with these; every engine of the model
would refuse the request too, so it is failed at once and the engine is not blamed. The
pool (:func:`executors.engines.pool.is_engine_fault`), the ``vllm`` and ``local``
backends read the error itself, the ``ray-engine`` backend its type's name, which is what
crosses from its actor. This module imports nothing of the backends', so each of them can
import it.
"""

from __future__ import annotations

from orchestrator.errors import PonderError

#: the errors with which an engine in process refuses the request itself
REQUEST_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError)


def is_request_error(exc: BaseException) -> bool:
    """Whether an engine's own (not Ponder's) error says the request itself is wrong.

    :param exc: what the engine raised.
    :returns: True for Python's ``ValueError`` or ``TypeError`` (and their subclasses)
        that is not a :class:`~orchestrator.errors.PonderError`.
    """
    return isinstance(exc, REQUEST_ERRORS) and not isinstance(exc, PonderError)

