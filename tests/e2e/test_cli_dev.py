"""`pena dev` and the PostgreSQL it starts: stopped on exit (SIGTERM or Ctrl-C) unless --keep-postgres,
a PostgreSQL that was already running is left running, and each time it says which. It runs with its
own PENA_HOME and a free port, so the shared servers are not touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from composition import infra
from composition.cli import EXIT_INTERRUPTED, EXIT_TERMINATED
from tests.e2e.conftest import ROOT, _wait_ready, free_port


def run_dev(env: dict[str, str], log: Path, *extra: str, stop: signal.Signals) -> tuple[int, str]:
    """Starts `pena dev`, waits until it is ready, stops it with `stop`; returns exit code and output."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-m", "composition.cli", "dev", "--port", str(port), *extra],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc, log, timeout=120)
        proc.send_signal(stop)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return code, log.read_text(errors="replace")


@pytest.fixture
def own_postgres(tmp_path: Path):
    home = tmp_path / "home"
    pg_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENA_")}
    env |= {"PENA_HOME": str(home), "PENA_PG_PORT": str(pg_port), "PENA_LOG_LEVEL": "WARNING"}
    pg = infra.PostgresInfra(port=pg_port)
    yield env, pg, home
    subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "composition.cli", "infra", "down"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )  # only this test's PostgreSQL (its own PENA_HOME); Kafka was never started there


def test_dev_stops_its_postgres_unless_kept(own_postgres, tmp_path: Path) -> None:
    env, pg, home = own_postgres
    data = home / "postgres" / "data"

    code, out = run_dev(env, tmp_path / "kept.log", "--keep-postgres", stop=signal.SIGTERM)
    assert code == EXIT_TERMINATED, out
    assert f"starting PostgreSQL on 127.0.0.1:{pg.port} (data {data})" in out
    assert f"PostgreSQL left running on 127.0.0.1:{pg.port} (--keep-postgres)" in out
    assert pg.is_running()

    code, out = run_dev(env, tmp_path / "before.log", stop=signal.SIGINT)  # Ctrl-C
    assert code in (0, EXIT_INTERRUPTED), out  # asyncio takes uvicorn's re-raised SIGINT: a clean 0
    assert f"PostgreSQL on 127.0.0.1:{pg.port} was running before pena dev: left running" in out
    assert pg.is_running()

    subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "composition.cli", "infra", "down"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert not pg.is_running()
    code, out = run_dev(env, tmp_path / "stopped.log", stop=signal.SIGTERM)
    assert code == EXIT_TERMINATED, out
    assert f"stopped the PostgreSQL pena dev started on 127.0.0.1:{pg.port} (data kept in {data}" in out
    assert "Traceback" not in out
    assert not pg.is_running()
    assert not (data / "postmaster.pid").exists()
