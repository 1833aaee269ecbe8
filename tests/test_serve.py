"""`riskiturva serve`: scheduler and dashboard in one process, stopped cleanly by SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import MINIMAL_CONFIG

RISKITURVA = str(Path(sys.executable).parent / "riskiturva")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "riskiturva.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    port = _free_port()
    process = subprocess.Popen(
        [RISKITURVA, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    status = answer.status
                    page = answer.read().decode()
            except OSError:
                time.sleep(0.2)
        assert status == 200
        assert "Riskiturva" in page
        # Without a session, data is not served
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=2)
            raise AssertionError("the layout was served without a session")
        except urllib.error.HTTPError as refused:
            assert refused.code in (302, 401, 403)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert f"Dashboard at http://127.0.0.1:{port}/" in stdout
