"""The viewer's API needs its token; without one it serves loopback host names only.

(The viewer's own suite, tests/viewer/test_security.py, covers every path and the
cookie and query forms; this is the security suite's summary check.)
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from orchestrator.store import MemoryStore
from orchestrator.viewer import create_app

TOKEN = "t0ken-for-tests"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_api_without_the_right_token_is_401(headers: dict[str, str]) -> None:
    with TestClient(create_app(MemoryStore(), token=TOKEN)) as client:
        for path in ("/api/v1/runs", "/api/v1/runs/x/events", "/"):
            assert client.get(path, headers=headers).status_code == 401, path


def test_api_with_the_token_answers() -> None:
    with TestClient(create_app(MemoryStore(), token=TOKEN)) as client:
        response = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200


def test_without_a_token_a_foreign_host_name_is_refused() -> None:
    from orchestrator.viewer.cli import LOOPBACK_HOSTS, is_loopback

    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    app = create_app(MemoryStore(), allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://evil.example") as client:
        assert client.get("/api/v1/runs").status_code == 400
