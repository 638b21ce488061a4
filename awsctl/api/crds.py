"""Writes the CRDs from the api models into crds/ and into the Helm chart's crds/ (with kopf's peering
CRDs from deploy/peering.yaml); a unit test fails when any file drifts from its source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from awsctl.api import alert_provider, binding, canary, grant

HEADER = "# Generated from awsctl/api by `make crds`; edit the models, not this file.\n"
PEERING_HEADER = "# kopf's peering CRDs, generated from deploy/peering.yaml by `make crds`.\n"
DEFINITIONS = {
    "targetgroupbinding.yaml": binding.definition,
    "canary.yaml": canary.definition,
    "alertprovider.yaml": alert_provider.definition,
    "trafficgrant.yaml": grant.definition,
}
ROOT = Path(__file__).resolve().parents[2]


def render(make: Callable[[], dict[str, Any]]) -> str:
    text: str = yaml.safe_dump(make(), sort_keys=False, width=100)
    return HEADER + text


def crds_dir() -> Path:
    return ROOT / "crds"


def chart_crds_dir() -> Path:
    return ROOT / "charts" / "awsctl" / "crds"


def peering_crds() -> str:
    docs = [
        d
        for d in yaml.safe_load_all((ROOT / "deploy" / "peering.yaml").read_text())
        if d and d.get("kind") == "CustomResourceDefinition"
    ]
    text: str = yaml.safe_dump_all(docs, sort_keys=False, width=100)
    return PEERING_HEADER + text


def expected() -> dict[Path, str]:
    """Every generated file and its text."""
    out = {}
    for name, make in DEFINITIONS.items():
        out[crds_dir() / name] = out[chart_crds_dir() / name] = render(make)
    out[chart_crds_dir() / "kopf-peering.yaml"] = peering_crds()
    return out


def main() -> int:
    for path, text in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
