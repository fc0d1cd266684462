"""The `pena` command as people meet it: run as a subprocess (`python -m composition.cli`), it answers
bad input and unreachable servers with one line on stderr and a distinct exit code, prints its
version, and every option has help. Nothing here needs a running server: the database and Kafka
are pointed at a closed port."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from composition import cli
from pena.auth import ROLES

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def pena(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PENA_")}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "composition.cli", *args],
        env=base | (env or {}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The last stderr line, after asserting there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, f"nothing on stderr (exit {result.returncode}, stdout {result.stdout!r})"
    return lines[-1]


def test_version_is_the_installed_package_version() -> None:
    result = pena("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"pena {version('pena')}"


def test_an_unknown_role_is_one_line_listing_the_valid_roles() -> None:
    result = pena("token", "--role", "nonsense")
    assert result.returncode == cli.EXIT_USAGE == 2
    line = error_line(result)
    assert len(result.stderr.strip().splitlines()) == 1
    assert line.startswith("pena token: error: argument --role: invalid choice: 'nonsense'")
    assert all(role in line for role in ROLES)
    assert result.stdout == ""


def test_a_known_role_prints_a_token_and_nothing_else(tmp_path: Path) -> None:
    result = pena("token", "--role", "admin", env={"PENA_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2
    assert len(result.stdout.splitlines()) == 1


def test_unknown_service_names_are_usage_errors() -> None:
    for args in (["migrate", "participants", "nosuch"], ["serve", "nosuch"], ["migrations", "check", "nosuch"]):
        result = pena(*args)
        assert result.returncode == cli.EXIT_USAGE, (args, result.stderr)
        assert "'nosuch'" in error_line(result)
        assert "participants" in error_line(result)


def test_migrate_with_the_database_down_names_the_url_without_password() -> None:
    url = f"postgresql+asyncpg://pena:s3cret-pw@{CLOSED}/pena_{{service}}"
    result = pena("migrate", "training", env={"PENA_DATABASE_URL": url})
    assert result.returncode == cli.EXIT_DATABASE == 3
    line = error_line(result)
    assert line.startswith(
        "pena: error: cannot reach PostgreSQL at postgresql+asyncpg://pena:***@127.0.0.1:1/pena_training"
    )
    assert "pena infra up" in line
    assert "PENA_DATABASE_URL" in line
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_serve_and_dev_with_the_database_down_fail_before_starting() -> None:
    url = f"postgresql+asyncpg://pena:s3cret-pw@{CLOSED}/pena_{{service}}"
    for args in (["serve", "monev", "--port", "0"], ["dev", "--port", "0"]):
        result = pena(*args, env={"PENA_DATABASE_URL": url})
        assert result.returncode == cli.EXIT_DATABASE, (args, result.stderr)
        assert error_line(result).startswith("pena: error: cannot reach PostgreSQL at postgresql+asyncpg://pena:***@")
        assert "s3cret-pw" not in result.stderr + result.stdout


def test_debug_shows_the_traceback_with_the_same_exit_code() -> None:
    url = f"postgresql+asyncpg://postgres@{CLOSED}/pena_{{service}}"
    for args, env in ((["--debug", "migrate", "monev"], {}), (["migrate", "monev"], {"PENA_DEBUG": "1"})):
        result = pena(*args, env={"PENA_DATABASE_URL": url} | env)
        assert result.returncode == cli.EXIT_DATABASE
        assert "Traceback (most recent call last)" in result.stderr
        assert "ConnectionRefusedError" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("pena: error: cannot reach PostgreSQL")


def test_topics_with_kafka_unreachable_is_one_line() -> None:
    result = pena("topics", "--timeout", "1", env={"PENA_KAFKA_BOOTSTRAP": CLOSED})
    assert result.returncode == cli.EXIT_KAFKA == 4
    line = error_line(result)
    assert line.startswith(f"pena: error: cannot reach Kafka at {CLOSED}")
    assert "PENA_KAFKA_BOOTSTRAP" in line
    assert "Unable connect" not in result.stderr  # aiokafka's per-attempt log lines are kept out


def test_an_invalid_setting_names_the_variable() -> None:
    result = pena("token", "--role", "admin", env={"PENA_TOPIC_PARTITIONS": "many"})
    assert result.returncode == cli.EXIT_SETTINGS
    assert error_line(result).startswith("pena: error: invalid setting: PENA_TOPIC_PARTITIONS:")


def test_contradictory_settings_are_one_line_without_a_variable_prefix() -> None:
    result = pena("token", "--role", "admin", env={"PENA_KAFKA_SSL_KEYFILE": "/nonexistent/client.key"})
    assert result.returncode == cli.EXIT_SETTINGS
    line = error_line(result)
    assert line.startswith("pena: error: invalid setting: ")
    assert "Kafka security settings refused: PENA_KAFKA_SSL_KEYFILE is set but PLAINTEXT does not use TLS" in line
    assert "PENA_:" not in line


def test_a_missing_region_file_is_a_usage_error(tmp_path: Path) -> None:
    result = pena("regions", "import", str(tmp_path / "absent.csv"))
    assert result.returncode == cli.EXIT_USAGE
    assert error_line(result) == f"pena: error: no region file at {tmp_path / 'absent.csv'}"


def test_an_unexpected_error_is_one_line_pointing_at_debug(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def boom(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_cmd_token", boom)
    monkeypatch.delenv("PENA_DEBUG", raising=False)
    assert cli.main(["token", "--role", "admin"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == "pena: error: unexpected ZeroDivisionError: division by zero (rerun with --debug for the traceback)\n"


def _walk(parser: argparse.ArgumentParser, path: str = "pena") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _walk(child, f"{path} {name}")
        found.append((path, action))
    return found


def test_every_command_and_option_has_help() -> None:
    parser = cli.build_parser()
    actions = _walk(parser)
    commands = {path for path, _ in actions}
    assert {"pena dev", "pena serve", "pena migrate", "pena infra", "pena topics", "pena token"} <= commands
    missing = [
        f"{path} {action.option_strings or action.dest}"
        for path, action in actions
        if not (action.help and action.help.strip()) or action.help == argparse.SUPPRESS
    ]
    assert missing == []
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {c.dest: c.help for c in subparsers._choices_actions}
    assert set(summaries) == set(subparsers.choices)
    assert all(summaries.values())


def test_help_lists_the_exit_codes() -> None:
    result = pena("--help")
    assert result.returncode == 0
    for code, meaning in cli.EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in result.stdout
    assert "--keep-postgres" in pena("dev", "--help").stdout
