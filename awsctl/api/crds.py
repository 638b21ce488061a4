"""Writes crds/*.yaml from the api models; a unit test fails when the files drift from the models."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from awsctl.api import binding, canary

HEADER = "# Generated from awsctl/api by `make crds`; edit the models, not this file.\n"
DEFINITIONS = {"targetgroupbinding.yaml": binding.definition, "canary.yaml": canary.definition}


def render(make) -> str:
    return HEADER + yaml.safe_dump(make(), sort_keys=False, width=100)


def crds_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "crds"


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else crds_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name, make in DEFINITIONS.items():
        (out / name).write_text(render(make))
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
