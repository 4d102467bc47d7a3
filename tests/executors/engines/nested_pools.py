"""Configs of pools whose members are fake engines (backend ``fake``) and pools of them,
and the resolver that builds them: for tests of a pool as a member of another."""

from __future__ import annotations

from typing import Any

from executors.engines import PoolBackend
from orchestrator.runtime.contracts import BackendFactory


def engine(name: str, **options: Any) -> dict[str, Any]:
    """A member on the ``fake`` backend; its options (``name`` among them) go to the
    fake engine's constructor."""
    return {"backend": "fake", "model": "m", "name": name, "options": {"name": name, **options}}


def inner(*members: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A member that is a pool (named ``inner``, not shared) of ``members``."""
    return {"backend": "pool", "model": "inner", "name": "inner",
            "options": {"members": list(members), "shared": False, **options}}


def resolver(fake: BackendFactory) -> Any:
    """Backend name -> factory: ``pool`` builds a pool resolving its members the same
    way, anything else is ``fake``."""
    def resolve(name: str) -> BackendFactory:
        if name == "pool":
            return lambda config: PoolBackend(config, resolve=resolve)
        return fake
    return resolve
