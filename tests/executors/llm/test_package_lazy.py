"""The backends' package imports each backend when it is first used: a run on the
simulated or the bundled model does not import the ``openai`` client library (half a
second of every such `ponder run`), and every public name still imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import executors.llm


def _imported_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             "print(' '.join(m for m in ('openai', 'executors.llm.openai_compat', "
             "'executors.llm.local') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True, cwd=Path(__file__).parents[3])
    return set(done.stdout.split())


def test_a_simulated_backend_imports_no_other_backend() -> None:
    assert _imported_after("from executors.llm import SimulatedBackend") == set()
    assert _imported_after("import executors.llm.simulated") == set()


def test_a_run_on_the_simulated_backend_imports_no_http_client() -> None:
    code = ("import asyncio\nfrom orchestrator import Workflow\n"
            "wf = Workflow.from_yaml('examples/quickstart.yaml')\n"
            "r = asyncio.run(wf.run(backend='simulated'))\n"
            "assert r.ok, r.error")
    assert "openai" not in _imported_after(code)


@pytest.mark.parametrize("name", executors.llm.__all__)
def test_each_public_name_imports(name: str) -> None:
    assert getattr(executors.llm, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        executors.llm.Nope  # noqa: B018
