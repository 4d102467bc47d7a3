"""Names a package imports when first used (PEP 562): its ``__getattr__`` calls
:func:`lazy_attribute`, so that importing a part of the package does not import all of
it (``orchestrator``'s public names, ``executors.llm``'s backends)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def lazy_attribute(package: str, where: Mapping[str, str], namespace: dict[str, Any],
                   name: str) -> Any:
    """The value of ``name``, imported from its module (``where[name]``) and kept in the
    package's ``namespace`` (its ``globals()``), so that it is imported once.

    :raises AttributeError: for a name the package does not have."""
    module = where.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value
