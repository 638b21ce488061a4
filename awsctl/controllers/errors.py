"""What a reconcile raises when it cannot go on, and how AWS refusals become one of those."""

from __future__ import annotations

import kopf
from botocore.exceptions import ClientError

from awsctl.aws.errors import RouteGone, error_code

# AWS answers that mean "your input cannot be done", not "try again": a condition, not a retry loop.
REFUSALS = frozenset(
    {
        "TooManyRules",
        "PriorityInUse",
        "TooManyTargetGroups",
        "TooManyTargets",
        "TooManyActions",
        "TooManyConditionValues",
        "TooManyRegistrationsForTargetId",
        "TooManyTags",
        "ValidationError",
        "InvalidConfigurationRequest",
        "InvalidTarget",
        "DuplicateTargetGroupName",
        "IncompatibleProtocols",
        "InvalidLoadBalancerAction",
        "TargetGroupAssociationLimit",
        "TooManyUniqueTargetGroupsPerLoadBalancer",
        "TooManyLoadBalancers",
        "TooManyListeners",
        "OperationNotPermitted",
        "UnsupportedProtocol",
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
    }
)


class NotReady(Exception):
    """Bad or missing input that a condition explains; the object waits for a change, not a retry loop."""

    def __init__(self, reason: str, message: str, field: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


def refusal(err: ClientError, what: str, field: str = "") -> NotReady | None:
    """An AWS refusal as a condition whose reason is the AWS error code; None for anything else
    (throttling, 5xx), which botocore retries and the loop backs off from."""
    code = error_code(err)
    if code not in REFUSALS:
        return None
    detail = err.response.get("Error", {}).get("Message") or code
    return NotReady(code, f"{field + ': ' if field else ''}AWS refused {what}: {detail}", field)


def route_gone(err: RouteGone) -> NotReady:
    """A route that vanished under a call, refused by the spec field it came from."""
    return NotReady(err.reason, f"{err.field}: {err.explain()}", err.field)


def namespaced(namespace: str | None) -> str:
    """kopf types a handler's `namespace` as optional for every kind; the kinds awsctl watches (its
    CRDs, Services, EndpointSlices, pods) always have one."""
    if namespace is None:
        raise kopf.PermanentError("a namespaced object arrived without a namespace")
    return namespace
