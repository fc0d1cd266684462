"""Import boundaries, checked with import-linter against the contracts under [tool.importlinter] in
pyproject.toml: the kernel (`pena`) imports no service and not the composition; services import
neither the composition nor each other. Imports inside functions count too."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SERVICES = ["services.participants", "services.training", "services.monev", "services.graduation"]


def test_the_boundary_contracts_are_configured() -> None:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    assert set(config["root_packages"]) == {"pena", "services", "composition"}
    contracts = {(c["type"], tuple(c.get("source_modules", c.get("modules", [])))): c for c in config["contracts"]}
    assert set(contracts[("forbidden", ("pena",))]["forbidden_modules"]) == {"services", "composition"}
    assert contracts[("forbidden", ("services",))]["forbidden_modules"] == ["composition"]
    assert ("independence", tuple(SERVICES)) in contracts


def test_the_kernel_and_the_services_keep_their_boundaries(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "3 kept, 0 broken" in report, report
