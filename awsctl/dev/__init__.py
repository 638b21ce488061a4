"""A real local control plane (etcd, kube-apiserver, controllers, kwok) plus moto, for tests and demos.

Its packages are the `dev` extra, declared once in pyproject.toml and read back from the installed
metadata, so `awsctl dev` names exactly what is missing.
"""

from __future__ import annotations

import re
from importlib import metadata

EXTRA = "dev"
EXTRAS = {"dev": ("dev",), "demo": ("dev", "demo")}  # what each command needs: `demo` also draws its plot


def missing_packages(requires: list[str] | None = None, extras: tuple[str, ...] = (EXTRA,)) -> list[str]:
    """The distributions of these extras that are not installed (`requires`: the metadata's lines)."""
    if requires is None:
        try:
            requires = metadata.requires("awsctl") or []
        except metadata.PackageNotFoundError:
            return []  # running from a source tree without metadata: nothing to compare against
    out = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        if not any(re.search(rf"""extra\s*==\s*["']{extra}["']""", marker) for extra in extras):
            continue
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
        if name is None:
            continue
        try:
            metadata.version(name.group(0))
        except metadata.PackageNotFoundError:
            out.append(name.group(0))
    return out


def missing_message(command: str, missing: list[str]) -> str:
    extra = EXTRAS.get(command, (EXTRA,))[-1]
    return f"awsctl {command} needs {', '.join(missing)}, from the {extra} extra: pip install 'awsctl[{extra}]'"
