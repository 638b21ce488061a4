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


GONE = ("LoadBalancer", "TargetGroup", "Listener", "Rule")


def describe_tags(elbv2, arns: list[str], missing_ok: bool = False) -> dict[str, dict[str, str]]:
    """Each ARN's tags. AWS refuses a whole batch that names a resource that is gone; `missing_ok`: read
    such a batch again one ARN at a time, and leave the gone ones out."""
    out: dict[str, dict[str, str]] = {}
    for i in range(0, len(arns), TAG_BATCH):
        batch = arns[i : i + TAG_BATCH]
        try:
            found = elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]
        except ClientError as err:
            if not (missing_ok and any(not_found(err, r) for r in GONE)):
                raise
            if len(batch) == 1:
                continue
            for arn in batch:
                out.update(describe_tags(elbv2, [arn], True))
            continue
        for desc in found:
            out[desc["ResourceArn"]] = {t["Key"]: t["Value"] for t in desc.get("Tags") or ()}
    return out


class RouteGone(LookupError):
    """Something a route lives on vanished under a call (a listener, or a rule deleted outside awsctl).
    It names the spec field it came from; `controllers.errors.route_gone` makes it a refusal."""

    reason = "RouteGone"
    field = "spec.loadBalancer"

    def explain(self) -> str:
        return f"a route awsctl uses vanished during the tick ({self}); retrying"
