"""Every answer of the four services matches its OpenAPI document (issue 15, item 2): schemathesis
sends a few generated requests, valid and invalid, to every operation of a `pena dev` process (real
PostgreSQL) with an admin token and checks no 5xx, the response body against the documented schema
and the response content type against the documented media types (problem+json for errors, text/csv
for CSV). Small on purpose so it runs in CI; tests/faults/test_api_fuzz.py sends more."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from schemathesis.generation.modes import GenerationMode

from tests.e2e.conftest import Deployment
from tests.e2e.fuzzing import admin_headers, dev_deployment, fuzz_operation, operations_of

EXAMPLES = 15  # per operation and mode


@pytest.fixture(scope="module")
def dev_process(infra_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with dev_deployment(tmp_path_factory.mktemp("conformance")) as deployment:
        yield deployment


def test_every_answer_matches_the_documented_schema_and_content_type(dev_process: Deployment) -> None:
    operations = operations_of(dev_process)
    assert len(operations) > 40, "the dev process should document every service's operations"
    sent: Counter[str] = Counter()
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz_operation(operation, mode, admin_headers(), EXAMPLES, sent)) is not None
    ]
    assert sum(sent.values()) > 10 * len(operations), f"too few cases were sent: {dict(sent)}"
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)
