"""Deterministic names and ownership tags, so a restarted operator finds its own AWS resources again."""

from __future__ import annotations

import hashlib
import re

MAX_TARGET_GROUP_NAME = 32  # ELBv2 limit
MANAGED_BY = "awsctl.io/managed-by"
CLUSTER = "awsctl.io/cluster"
OWNER = "awsctl.io/owner"
ROLE = "awsctl.io/role"


# Tags the AWS Load Balancer Controller puts on what it manages (Ingress, Service and Gateway stacks).
LBC_TAG_PREFIXES = ("elbv2.k8s.aws/", "ingress.k8s.aws/", "service.k8s.aws/", "gateway.k8s.aws/")


def lbc_tag(tags: dict[str, str]) -> str | None:
    """`key=value` of the first tag that marks a resource the LBC manages, or None: the LBC reconciles
    such a listener's rules and would undo or delete what awsctl writes there."""
    for key in sorted(tags):
        if key.startswith(LBC_TAG_PREFIXES):
            return f"{key}={tags[key]}"
    return None


def load_balancer_arn(arn: str) -> str:
    """arn:...:listener/app/<lb>/<lb id>/<listener id> (or a rule's, :listener-rule/.../<rule id>) ->
    arn:...:loadbalancer/app/<lb>/<lb id>."""
    for kind, below in ((":listener-rule/", 2), (":listener/", 1)):
        head, _, path = arn.partition(kind)
        if path:
            return f"{head}:loadbalancer/{path.rsplit('/', below)[0]}"
    return arn


def alarm_name(ref: str) -> str:
    """`arn:aws:cloudwatch:region:account:alarm:NAME` or NAME -> NAME."""
    return ref.split(":alarm:", 1)[1] if ":alarm:" in ref else ref


def group_of(arn: str) -> str:
    """arn:...:targetgroup/<name>/<id> -> <name>: what people know a target group by."""
    return arn.rsplit("/", 2)[-2] if "/" in arn else arn


def rule_id(arn: str) -> str:
    """arn:...:listener-rule/app/<lb>/<lb id>/<listener id>/<rule id> -> <rule id>."""
    return arn.rsplit("/", 1)[-1]


def primary_name(name: str) -> str:
    return f"{name}-primary"


def canary_name(name: str) -> str:
    return f"{name}-canary"


def owner(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def owner_tags(cluster: str, kind: str, namespace: str, name: str, role: str | None = None) -> dict[str, str]:
    tags = {MANAGED_BY: "awsctl", CLUSTER: cluster, OWNER: owner(kind, namespace, name)}
    if role:
        tags[ROLE] = role
    return tags


def load_balancer_key(load_balancer: str) -> str:
    """A short key for a load balancer's ARN: the groups and bindings a Canary makes after it moved to
    another load balancer carry it (a target group serves one load balancer)."""
    return hashlib.sha256(load_balancer.encode()).hexdigest()[:6]


def target_group_name(cluster: str, namespace: str, canary: str, role: str, backend: str, key: str = "") -> str:
    """`<ns-name prefix>-<hash>-<p|c>`: readable in the console, unique per cluster/owner/role/backend,
    and per load balancer `key` once the Canary has moved (the first groups have none).

    ELBv2 names allow 32 alphanumerics and hyphens, not starting or ending with a hyphen.
    """
    keyed = f"/{key}" if key else ""
    digest = hashlib.sha256(f"{cluster}/{namespace}/{canary}/{role}/{backend}{keyed}".encode()).hexdigest()[:8]
    prefix = re.sub(r"[^a-zA-Z0-9-]", "-", f"{namespace}-{canary}")
    prefix = re.sub(r"-+", "-", prefix).strip("-")[: MAX_TARGET_GROUP_NAME - 12].strip("-") or "awsctl"
    return f"{prefix}-{digest}-{role[0]}"


def binding_name(canary: str, role: str, backend: str, generated: bool, key: str = "") -> str:
    """Child binding names: `<canary>-primary` for the generated Service, `<canary>-primary-<svc>` otherwise;
    `-<key>` after them for groups made after a move to another load balancer."""
    base = f"{canary}-{role}"
    name = base if generated else f"{base}-{backend}"
    return f"{name[: 252 - len(key)]}-{key}" if key else name[:253]


READINESS_GATE_PREFIX = "target-health.awsctl.io/"


def readiness_gate(binding: str) -> str:
    """The pod readiness gate a binding answers: True once the pod's target is healthy in AWS."""
    return f"{READINESS_GATE_PREFIX}{binding}"
