"""Trimmed botocore service models: the operator loads these instead of the full ones.

botocore keeps every loaded service model in memory. EC2's is the largest there is (about 15 MiB
of the operator's RSS) and awsctl calls one of its 700 operations, DescribeVpcs, for a VPC's CIDRs.
`python -m awsctl.aws.service_models` writes the model cut down to the operations in `KEPT` (and the shapes
they reach) from the installed botocore; a unit test fails when the committed file drifts from it.
A newer EC2 API version in botocore simply wins over this one (the full model, more memory).
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore.loaders
import botocore.session

HERE = Path(__file__).resolve().parent / "service-models"
KEPT = {"ec2": ("DescribeVpcs",)}


def trim(model: dict, operations: tuple[str, ...]) -> dict:
    """The model with only `operations`, the shapes they reach, and no documentation."""
    shapes = model["shapes"]
    reached: set[str] = set()

    def reach(name: str | None) -> None:
        if not name or name in reached:
            return
        reached.add(name)
        shape = shapes[name]
        for ref in [*(shape.get("members") or {}).values(), shape.get("member"), shape.get("key"), shape.get("value")]:
            if ref:
                reach(ref["shape"])

    ops = {}
    for op in operations:
        spec = {k: v for k, v in model["operations"][op].items() if k != "documentation"}
        for ref in (spec.get("input"), spec.get("output"), *(spec.get("errors") or ())):
            if ref:
                reach(ref["shape"])
        ops[op] = spec
    slim = {name: {k: v for k, v in shapes[name].items() if k != "documentation"} for name in sorted(reached)}
    for shape in slim.values():
        for member in (shape.get("members") or {}).values():
            member.pop("documentation", None)
    return {"version": model.get("version", "2.0"), "metadata": model["metadata"], "operations": ops, "shapes": slim}


def generated() -> dict[Path, str]:
    """Relative path -> file text, from the installed botocore's full models."""
    loader = botocore.loaders.Loader()
    out = {}
    for service, operations in KEPT.items():
        version = loader.determine_latest_version(service, "service-2")
        model = loader.load_service_model(service, "service-2", version)
        out[Path(service) / version / "service-2.json"] = (
            json.dumps(trim(model, operations), indent=1, sort_keys=True) + "\n"
        )
    return out


def session() -> botocore.session.Session:
    """A botocore session that finds the trimmed models before its own."""
    bs = botocore.session.get_session()
    bs.get_component("data_loader").search_paths.insert(0, str(HERE))
    return bs


def main() -> None:
    for path, text in generated().items():
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        (HERE / path).write_text(text)
        print(f"wrote {HERE / path}")


if __name__ == "__main__":
    main()
