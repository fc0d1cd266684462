"""Import boundaries, checked with import-linter against the contracts under [tool.importlinter] in
pyproject.toml: the kernel (`pena`) imports no service and not the composition; services import
neither the composition nor each other. Imports inside functions count too."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SERVICES = ["services.participants", "services.training", "services.monev", "services.graduation"]


def test_the_boundary_contracts_are_configured() -> None:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    assert set(config["root_packages"]) == {"pena", "services", "composition"}
    contracts = {(c["type"], tuple(c.get("source_modules", c.get("modules", [])))): c for c in config["contracts"]}
    assert set(contracts[("forbidden", ("pena",))]["forbidden_modules"]) == {"services", "composition"}
    assert contracts[("forbidden", ("services",))]["forbidden_modules"] == ["composition"]
    assert ("independence", tuple(SERVICES)) in contracts


def test_the_kernel_and_the_services_keep_their_boundaries() -> None:
    # In a child process: import-linter configures logging with logging.config, which disables every
    # logger that exists at that moment (pena.access among them) for the rest of a test session.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(lint_imports), str(PYPROJECT), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=PYPROJECT.parent,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "3 kept, 0 broken" in report, report
