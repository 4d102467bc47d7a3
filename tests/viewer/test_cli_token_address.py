"""The address `ponder view --token T` prints opens the viewer whatever the token holds:
it printed the token as it is, so a "#", "&", "+" or space cut it short or changed it
(`?token=a+b c#d&e` sent "a b" and was answered 401)."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

TOKEN = "a+b c#d&e%41/\u00e9"


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_printed_address_opens_the_viewer(how: str) -> None:
    args = [sys.executable, "-m", "orchestrator.viewer", "--db", "memory://", "--port", "0"]
    env = None
    if how == "option":
        args += ["--token", TOKEN]
    else:
        import os

        env = {**os.environ, "PONDER_VIEW_TOKEN": TOKEN}
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).parents[2])
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert "Ctrl-C to stop" in line, line
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
            assert b"401" not in page.read()
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
