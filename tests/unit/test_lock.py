"""The venv the tests run in is the lock: every locked package at its locked version, and the lock
within the bounds pyproject.toml gives. Tests that depend on package versions (the trimmed botocore
models, the generated CRDs, ruff and mypy) then compare with the lock, never with the newest release."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(path: Path = LOCK) -> dict[str, tuple[str, str | None]]:
    """Package name -> (version, environment marker or None), from a hashed requirements lock."""
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = (match[2], match[3])
    return pins


def test_the_lock_parses_and_pins_every_package_with_hashes():
    text = LOCK.read_text()
    pins = locked()
    assert {"boto3", "botocore", "kopf", "moto", "ruff", "mypy", "pytest", "setuptools"} <= set(pins)
    # Every pin is followed by at least one hash, so `--require-hashes` can install it.
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2]):
        if "==" in block.split("\n", 1)[0]:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]


def test_every_locked_package_is_installed_at_its_locked_version():
    wrong = {}
    for name, (version, marker) in locked().items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed packages differ from {LOCK.name} (locked, installed): {wrong}; run make venv"


def test_the_lock_is_within_the_bounds_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in ("dev", "test"):
        declared += [r for r in project["optional-dependencies"][extra] if not r.startswith("awsctl")]
    pins = locked()
    for text in declared:
        req = Requirement(text)
        version, _ = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{req} is locked at {version}: run make lock"


def test_the_image_lock_is_the_runtime_subset_at_the_tested_versions():
    """requirements/runtime.txt (the Dockerfile's) holds awsctl's own dependencies at the versions the
    tests ran: every pin there is the same in the full lock."""
    runtime, full = locked(ROOT / "requirements" / "runtime.txt"), locked()
    assert {"boto3", "botocore", "kopf", "pydantic", "setuptools"} <= set(runtime)
    assert "moto" not in runtime and "pytest" not in runtime
    differ = {name: (pin[0], full.get(name, ("absent",))[0]) for name, pin in runtime.items() if full.get(name) != pin}
    assert not differ, f"runtime.txt and lock.txt disagree (runtime, lock): {differ}; run make lock"
