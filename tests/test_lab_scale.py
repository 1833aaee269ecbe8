"""The lab at the size of a partner's estate: nginx sized from its sockets, readiness asked
of every server directly (never only of the delay proxy in front), and `down` that stops
everything even when some recorded processes are already gone.

Real nginx, Knot DNS and the lab's delay proxy on loopback addresses of their own
(127.77.x.y); no lab fixture.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from riskiturva.lab import _pki, _web
from riskiturva.lab.estate import (
    STATE_FILE,
    Endpoint,
    LabError,
    LabState,
    Process,
    _Plan,
    _signal,
    _start,
    _stop,
    _wait_ready,
    _which,
    down,
    process_alive,
    readiness_checks,
)
from riskiturva.lab.manifest import load_manifest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="binds loopback ports 80/443")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)  # nginx workers run as nobody
    for sub in ("logs", "web", "web/tmp", "pki"):
        (tmp_path / sub).mkdir()
    return tmp_path


def _address(i: int) -> str:
    return f"127.77.{i // 250}.{i % 250 + 1}"


def test_nginx_serves_an_estate_with_more_sockets_than_the_old_fixed_limit(workdir: Path):
    # Given 700 clones of a lab web host (1,400 listening sockets: far above the fixed
    # 512 worker_connections that stopped the lab at ~56 municipalities)
    template = next(h for h in load_manifest().hosts if h.web and h.tls)
    now = dt.datetime.now(dt.UTC)
    cert = _pki.LabCA(workdir / "pki", now).issue(template.fqdn, "valid")
    dh = _pki.write_weak_dh_params(workdir / "pki" / "dh1024.pem")
    hosts = [
        dataclasses.replace(template, fqdn=f"h{i}.{template.fqdn}", ip=_address(i))
        for i in range(700)
    ]
    config = _web.nginx_config([(h, h.ip, cert) for h in hosts], workdir / "web", dh, now)
    listening = sum(len(_web.web_ports(h)) for h in hosts)
    assert listening >= 1400
    (workdir / "web" / "nginx.conf").write_text(config)
    nginx = _start(
        "nginx",
        [_which("nginx") or "nginx", "-c", str(workdir / "web" / "nginx.conf"), "-p",
         str(workdir / "web"), "-g", "daemon off;"],
        workdir,
    )  # fmt: skip
    try:
        # When readiness asks every server for an answer (not just a TCP accept)
        plan = _Plan()
        for h in hosts:
            for port in _web.web_ports(h):
                plan.expose(
                    Endpoint(h.fqdn, h.ip, port, "tcp", "https" if port == 443 else "http"), h.ip
                )
        # Then every one of them answers: the worker started with room for its sockets
        _wait_ready(readiness_checks(plan), [nginx], timeout=30)
    finally:
        _stop([nginx])
    assert "not enough" not in (workdir / "web" / "error.log").read_text()


def test_readiness_asks_the_server_and_not_only_the_delay_proxy(workdir: Path):
    # Given the lab's delay proxy listening for an HTTPS endpoint whose server is not running
    endpoint = Endpoint("www.example.test", "127.77.10.1", 443, "tcp", "https")
    backend = "127.177.10.1"
    spec = workdir / "routes.json"
    spec.write_text(
        json.dumps(
            {"rtt_ms": 20, "routes": [
                {"proto": "tcp", "listen": [endpoint.ip, 443], "target": [backend, 443]}]}
        )
    )  # fmt: skip
    proxy = _start(
        "latency-proxy", [sys.executable, "-m", "riskiturva.lab._latency", str(spec)], workdir
    )
    try:
        plan = _Plan()
        plan.expose(endpoint, backend)
        _wait_ready([c for c in readiness_checks(plan) if c[1] == endpoint.ip], [proxy], 10)
        # When the lab waits for readiness
        # Then it names the server behind the proxy instead of reporting ready
        with pytest.raises(LabError, match=r"https 127\.177\.10\.1:443/tcp"):
            _wait_ready(readiness_checks(plan), [proxy], timeout=1)
    finally:
        _stop([proxy])


def _knotd(workdir: Path) -> Process:
    rundir = workdir / "knot"
    rundir.mkdir()
    conf = rundir / "knot.conf"
    conf.write_text(
        f'server:\n    rundir: "{rundir}"\n    listen: [ "127.77.20.53@53" ]\n'
        f'database:\n    storage: "{rundir}"\n'
    )
    knot = _start("knot", [_which("knotd") or "knotd", "-c", str(conf)], workdir)
    deadline = time.monotonic() + 10
    while not (rundir / "knot.sock").exists() and time.monotonic() < deadline:
        assert process_alive(knot.pid), (workdir / "logs" / "knot.log").read_text()
        time.sleep(0.02)
    return knot


def test_down_stops_knotd_when_other_recorded_processes_are_already_gone(workdir: Path):
    # Given a lab whose recorded processes include some that ended on their own (a server
    # and a worker child that exited) and a running knotd, started first and stopped last
    knot = _knotd(workdir)
    gone = subprocess.Popen(["sleep", "0"])
    gone.wait()
    ended = Process("smtp", gone.pid, ("sleep",), str(workdir / "logs" / "x.log"), (gone.pid,))
    state = LabState(
        directory=str(workdir), config_path="", ca_file="", trust_anchors_file="",
        dns_servers=("127.77.20.53",), dns_port=53, latency_ms=0, started_at="",
        startup_seconds=0.0, processes=(knot, ended),
    )  # fmt: skip
    (workdir / STATE_FILE).write_text(state.to_json())
    # When the lab is brought down
    stopped = down(workdir)
    # Then knotd is stopped, the gone ones are skipped, and the state file is removed
    assert stopped == [f"knot ({knot.pid})"]
    assert not process_alive(knot.pid)
    assert not (workdir / STATE_FILE).exists()


def test_a_signal_to_a_process_that_ended_since_its_check_is_not_an_error():
    # Given a process that was alive when checked and has ended (and been reaped) since
    proc = subprocess.Popen(["sleep", "30"])
    assert process_alive(proc.pid)
    proc.kill()
    proc.wait()
    # When it is signalled (the gap between the liveness check and os.kill)
    # Then nothing is raised
    _signal(proc.pid, signal.SIGTERM)


def test_a_cloned_estate_serves_each_clone_with_the_weaknesses_of_its_original(tmp_path: Path):
    # Given the lab grown to 10 municipalities (its 5 and a clone of each), in a network
    # namespace of its own (the addresses of a running lab are then no obstacle)
    riskiturva = str(Path(sys.executable).parent / "riskiturva")
    lab_dir = tmp_path / "lab"
    collectors = "--collector dns_email --collector tls --collector web"
    script = (
        f"ip link set lo up && {riskiturva} lab up --dir {lab_dir} --municipalities 10 && "
        f"{riskiturva} scan --config {lab_dir}/riskiturva.toml {collectors}; code=$?; "
        f"{riskiturva} lab down --dir {lab_dir}; exit $code"
    )
    # When it is scanned
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=280
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: the planted findings
    # Then each clone has its original's findings, under its own names and addresses
    manifest = load_manifest(municipalities=10)
    own, clones = manifest.municipalities[:5], manifest.municipalities[5:]
    database = sqlite3.connect(lab_dir / "data" / "riskiturva.db")
    rows = database.execute(
        "SELECT o.slug, f.check_id, f.subject FROM finding f"
        " JOIN organisation o ON o.id = f.organisation_id WHERE f.status = 'open'"
    ).fetchall()
    database.close()
    found: dict[str, set[tuple[str, str]]] = {}
    for slug, check, subject in rows:
        found.setdefault(slug, set()).add((check, subject))
    for clone, original in zip(clones, own, strict=True):
        prefixes = (clone.network.rsplit(".", 1)[0] + ".", original.network.rsplit(".", 1)[0] + ".")
        renamed = {
            (check, subject.replace(clone.domain, original.domain).replace(*prefixes))
            for check, subject in found.get(clone.slug, set())
        }
        assert found[original.slug], original.slug
        assert renamed == found[original.slug], clone.slug
