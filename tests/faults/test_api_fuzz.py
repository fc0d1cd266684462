"""OpenAPI fuzzing (schemathesis) of the four services in one `pena dev` process: with an admin token
on every call, no operation answers a 5xx and no answer breaks the documented schema. Bad input must
get a clear 4xx problem, never a crash.

Bounded: 10 examples per operation and mode in CI, so the run stays within minutes; `make faults-long`
sends five times as many (PENA_FAULT_SCALE)."""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from pena.auth import issue_dev_token
from pena.settings import Settings
from tests.e2e.conftest import Deployment, _drop_databases, _start, _stop, _wait_ready, base_env, free_port
from tests.faults.figures import report, scaled

MAX_EXAMPLES = scaled(10)
CASES_SENT: Counter[str] = Counter()  # per mode, for the printed figures


@pytest.fixture(scope="module")
def dev_process(infra_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """`pena dev` on the shared PostgreSQL, in a namespace of its own (own databases), in-process bus."""
    namespace = "z" + uuid.uuid4().hex[:10]
    env = base_env(namespace) | {"PENA_BUS": "inprocess", "PENA_RATE_LIMIT_PER_MINUTE": "1000000"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    deployment = Deployment(namespace, env, {"dev": url})
    log = Path(tmp_path_factory.mktemp("fuzz")) / "dev.log"
    deployment.logs["dev"] = log
    try:
        deployment.processes["dev"] = _start(
            [sys.executable, "-m", "composition.cli", "dev", "--port", str(port)], env, log
        )
        _wait_ready(url, deployment.processes["dev"], log)
        yield deployment
    finally:
        _stop(deployment)
        _drop_databases(namespace)


@pytest.fixture(scope="module")
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(Settings(environment='test'), role='admin', sub='fuzz-1')}"}


def fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """Runs a few generated cases against one operation; returns the first failure (with the
    request to reproduce it), or None."""

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as found
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        CASES_SENT[mode.value] += 1
        case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance], timeout=30)

    try:
        run()
    except Unsatisfiable:  # nothing to negate (no parameters, or only free strings): nothing to send
        return None
    # schemathesis raises its FailureGroup, a BaseExceptionGroup (not an Exception); keep its text (curl included)
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.method.upper()} {operation.path} [{mode.value}]: {str(exc)[:1500]}"
    return None


def test_no_server_error_and_answers_match_the_schema(dev_process: Deployment, admin: dict[str, str]) -> None:
    """Every operation of the four services, positive and negative (invalid) input. (Written as one
    loop rather than schemathesis.pytest.from_fixture: the installed schemathesis 4.32 reads
    `request.node._nodeid`, which pytest 9 no longer has.)"""
    schema = schemathesis.openapi.from_url(dev_process.url("dev") + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 40, "the dev process should document every service's operations"
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz_operation(operation, mode, admin)) is not None
    ]
    report(
        "schemathesis against the four services' OpenAPI",
        operations=len(operations),
        examples_per_operation_and_mode=MAX_EXAMPLES,
        cases_sent=dict(CASES_SENT),
        failing_operations=len(failures),
    )
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)


def test_dev_process_survived_the_fuzzing(dev_process: Deployment) -> None:
    """After every operation was fuzzed, the process still runs and is ready."""
    proc = dev_process.processes["dev"]
    assert proc.poll() is None, dev_process.log_text()[-3000:]
    assert httpx.get(dev_process.url("dev") + "/readyz", timeout=10).status_code == 200
