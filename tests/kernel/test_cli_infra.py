"""`pena infra up` and `pena dev` refuse a port served by another checkout's server, asked of the
real running servers without stopping them: a fresh PENA_HOME stands for the other checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from composition import infra
from composition.cli import EXIT_INFRA

ROOT = Path(__file__).resolve().parents[2]


def pena(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"PENA_HOME", "PENA_INFRA_SHARED", "PENA_DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "composition.cli", *args],
        env=base | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def owner_home() -> Path:
    """The PENA_HOME of the PostgreSQL the tests use (this checkout's, or the one shared with it)."""
    served = infra.PostgresInfra().served_data_directory()
    assert served is not None, "the test PostgreSQL does not answer SHOW data_directory"
    return Path(served).parents[1]  # <home>/postgres/data


def test_the_servers_report_their_folders(infra_up: None) -> None:
    home = owner_home()
    assert Path(infra.PostgresInfra().served_data_directory() or "") == home / "postgres" / "data"
    assert Path(infra.KafkaInfra().served_log_dirs() or "") == home / "kafka" / "data"


def test_up_refuses_another_checkouts_servers(infra_up: None, tmp_path: Path) -> None:
    result = pena("infra", "up", env={"PENA_HOME": str(tmp_path)})
    assert result.returncode == EXIT_INFRA == 5
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert line.startswith(f"pena: error: 127.0.0.1:{infra.PostgresInfra().port} is served by the postgres")
    assert str(owner_home() / "postgres" / "data") in line  # names the owning folder
    assert str(tmp_path / "postgres" / "data") in line
    assert "PENA_PG_PORT" in line
    assert "PENA_INFRA_SHARED=1" in line
    assert not (tmp_path / "postgres" / "data" / "PG_VERSION").exists()  # nothing was set up there

    kafka_only = pena("infra", "up", "--no-postgres", env={"PENA_HOME": str(tmp_path)})
    assert kafka_only.returncode == EXIT_INFRA
    assert "is served by the kafka whose data is in" in kafka_only.stderr
    assert "PENA_KAFKA_PORT" in kafka_only.stderr

    status = pena("infra", "status", env={"PENA_HOME": str(tmp_path)})
    assert status.returncode == 0
    assert f"served by {owner_home() / 'postgres' / 'data'} (not this checkout's" in status.stdout


def test_shared_opt_in_uses_the_running_servers(infra_up: None, tmp_path: Path) -> None:
    result = pena("infra", "up", env={"PENA_HOME": str(tmp_path), "PENA_INFRA_SHARED": "1"})
    assert result.returncode == 0, result.stderr
    assert f"is the postgres whose data is in {owner_home() / 'postgres' / 'data'}; using it" in result.stdout
    assert "is the kafka whose data is in" in result.stdout


def test_the_owner_sees_its_own_servers(infra_up: None) -> None:
    result = pena("infra", "up", env={"PENA_HOME": str(owner_home())})
    assert result.returncode == 0, result.stderr
    assert "postgres already running" in result.stdout
    assert "(this checkout's" in result.stdout
    assert "kafka already running" in result.stdout


def test_dev_refuses_another_checkouts_postgres(infra_up: None, tmp_path: Path) -> None:
    env = {"PENA_HOME": str(tmp_path), "PENA_PG_PORT": str(infra.PostgresInfra().port)}
    result = pena("dev", "--port", "1", env=env)  # refused before it would listen
    assert result.returncode == EXIT_INFRA
    assert "is served by the postgres whose data is in" in result.stderr.strip().splitlines()[-1]
