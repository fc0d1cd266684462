"""Shared by the OpenAPI fuzz test (tests/faults/test_api_fuzz.py, many examples) and the CI
conformance test (tests/e2e/test_api_conformance.py, few): a `pena dev` process with the four
services, an admin token, and schemathesis run on one operation with the checks both use: no 5xx,
every answer matches its documented schema AND its documented content type."""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from pena.auth import issue_dev_token
from pena.settings import Settings
from tests.e2e.conftest import Deployment, _drop_databases, _start, _stop, _wait_ready, base_env, free_port

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@contextmanager
def dev_deployment(log_dir: Path) -> Iterator[Deployment]:
    """`pena dev` on the shared PostgreSQL, in a namespace of its own (own databases), in-process bus."""
    namespace = "z" + uuid.uuid4().hex[:10]
    env = base_env(namespace) | {"PENA_BUS": "inprocess", "PENA_RATE_LIMIT_PER_MINUTE": "1000000"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    deployment = Deployment(namespace, env, {"dev": url})
    log = log_dir / "dev.log"
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


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(Settings(environment='test'), role='admin', sub='fuzz-1')}"}


def operations_of(deployment: Deployment) -> list[Any]:
    schema = schemathesis.openapi.from_url(deployment.url("dev") + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def fuzz_operation(
    operation: Any, mode: GenerationMode, headers: dict[str, str], max_examples: int, sent: Counter[str]
) -> str | None:
    """Runs a few generated cases against one operation; returns the first failure (with the
    request to reproduce it), or None."""

    @hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as found
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        sent[mode.value] += 1
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:  # nothing to negate (no parameters, or only free strings): nothing to send
        return None
    # schemathesis raises its FailureGroup, a BaseExceptionGroup (not an Exception); keep its text (curl included)
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.method.upper()} {operation.path} [{mode.value}]: {str(exc)[:1500]}"
    return None
