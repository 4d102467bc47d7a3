"""The one wording of "this needs an extra that is not installed".

Backends that need an optional package say so in these words twice: when ``ponder
validate`` (and ``ponder run`` before it starts) asks their ``missing_extra(config)``
classmethod, and when they are built without it. The trace store says it in the same
words of a PostgreSQL URL whose driver is missing (:func:`extra_missing` takes the
subject). (In ``orchestrator``, which ``executors``
imports and which imports no executor.)
"""

from __future__ import annotations

import importlib.util


def install_hint(extra: str) -> str:
    """How to install the extra ``extra``: Ponder is installed from its clone, or from a
    package index."""
    return f"pip install -e \".[{extra}]\" in Ponder's clone, or pip install \"ponder[{extra}]\""


def extra_missing(subject: str, extra: str, lacking: str) -> str:
    """The message: ``subject`` (what needs it: ``the vllm backend``, ``trace store URL
    postgresql://...``) needs the extra ``extra``, of which ``lacking`` (what is missing:
    ``vLLM``, ``psycopg``) is not installed, and how to install it (one line)."""
    return (f"{subject} needs the extra `{extra}` ({lacking} is not installed): "
            f"{install_hint(extra)}")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (vLLM and Ray take
    seconds to import). A module set to None in ``sys.modules`` is not."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; a module without spec
        return False
