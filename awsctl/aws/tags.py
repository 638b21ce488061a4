"""ELBv2 tags, read in the batches DescribeTags accepts."""

from __future__ import annotations

TAG_BATCH = 20  # DescribeTags takes at most 20 ARNs


def describe_tags(elbv2, arns: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(arns), TAG_BATCH):
        for desc in elbv2.describe_tags(ResourceArns=arns[i:i + TAG_BATCH])["TagDescriptions"]:
            out[desc["ResourceArn"]] = {t["Key"]: t["Value"] for t in desc.get("Tags") or ()}
    return out
