"""What every ELBv2 adapter needs: error codes (AWS spells "not found" two ways) and tags read in the
batches DescribeTags accepts."""

from __future__ import annotations

from botocore.exceptions import ClientError

TAG_BATCH = 20  # DescribeTags takes at most 20 ARNs


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def not_found(err: ClientError, resource: str) -> bool:
    """`resource` is TargetGroup, Listener or Rule: AWS answers <resource>NotFound or ...Exception."""
    return error_code(err) in (f"{resource}NotFound", f"{resource}NotFoundException")


def describe_tags(elbv2, arns: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(arns), TAG_BATCH):
        for desc in elbv2.describe_tags(ResourceArns=arns[i : i + TAG_BATCH])["TagDescriptions"]:
            out[desc["ResourceArn"]] = {t["Key"]: t["Value"] for t in desc.get("Tags") or ()}
    return out
