"""OpenAPI fuzzing (schemathesis) of the four services in one `pena dev` process: with an admin token
on every call, no operation answers a 5xx and every answer matches the documented schema and content
type (tests/e2e/fuzzing.py). Bad input must get a clear 4xx problem, never a crash.

Bounded: 10 examples per operation and mode in CI, so the run stays within minutes; `make faults-long`
sends five times as many (PENA_FAULT_SCALE)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from schemathesis.generation.modes import GenerationMode

from tests.e2e.conftest import Deployment
from tests.e2e.fuzzing import admin_headers, dev_deployment, fuzz_operation, operations_of
from tests.faults.figures import report, scaled

MAX_EXAMPLES = scaled(10)
CASES_SENT: Counter[str] = Counter()  # per mode, for the printed figures


@pytest.fixture(scope="module")
def dev_process(infra_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with dev_deployment(Path(tmp_path_factory.mktemp("fuzz"))) as deployment:
        yield deployment


def test_no_server_error_and_answers_match_the_schema(dev_process: Deployment) -> None:
    """Every operation of the four services, positive and negative (invalid) input. (Written as one
    loop rather than schemathesis.pytest.from_fixture: the installed schemathesis 4.32 reads
    `request.node._nodeid`, which pytest 9 no longer has.)"""
    operations = operations_of(dev_process)
    assert len(operations) > 40, "the dev process should document every service's operations"
    admin = admin_headers()
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz_operation(operation, mode, admin, MAX_EXAMPLES, CASES_SENT)) is not None
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
