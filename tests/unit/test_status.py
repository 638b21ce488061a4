"""Snapshot tests of `awsctl status` output. UPDATE_SNAPSHOTS=1 rewrites the files; review the diff."""

import os
from pathlib import Path

import pytest

from awsctl.status import bindings, canaries

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = 1_800_000_000.0


def group(role, backend, tg, weight, share, healthy, registered):
    return {
        "role": role,
        "backend": backend,
        "targetGroup": tg,
        "arn": f"arn:...:targetgroup/{tg}/1",
        "weight": weight,
        "share": share,
        "healthy": healthy,
        "registered": registered,
    }


PROGRESSING = {
    "namespace": "shop",
    "name": "checkout",
    "phase": "Progressing",
    "canaryWeight": 0.5,
    "failedChecks": 1,
    "threshold": 3,
    "revision": "82fa194f2ea3ce70",
    "promoted": "591a57b75cb8b311",
    "message": "advancing",
    "route": {
        "id": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/demo/1/2/0f3c",
        "description": "rule 0f3c",
        "stickiness": {"enabled": True, "durationSeconds": 300},
        "error": None,
    },
    "groups": [
        group("primary", "checkout-primary:80", "shop-checkout-3f2a-p", 995, 99.5, 3, 3),
        group("canary", "checkout-canary:80", "shop-checkout-9c1d-c", 5, 0.5, 2, 3),
    ],
    "abRules": 0,
    "metrics": [
        {"name": "request-success-rate", "value": 99.734, "min": 99, "verdict": "pass", "message": ""},
        {"name": "request-duration", "max": 500, "verdict": "wait", "message": "no data"},
    ],
    "lastEvent": {
        "type": "Normal",
        "reason": "Progressing",
        "message": "advancing canary weight to 0.5%",
        "time": NOW - 12,
    },
}
BACKEND_REFS = {
    "namespace": "edge",
    "name": "api",
    "phase": "WaitingPromotion",
    "canaryWeight": 10,
    "failedChecks": 0,
    "threshold": 5,
    "revision": "aa11bb22cc33dd44",
    "promoted": "ee55ff66",
    "message": "waiting for confirm-promotion",
    "route": {
        "id": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/1/2",
        "description": "listener default action",
        "stickiness": {"enabled": False, "durationSeconds": None},
        "error": None,
    },
    "groups": [
        group("primary", "proxy-a:443", "edge-api-1111-p", 225, 22.5, 1, 1),
        group("primary", "proxy-b-with-a-very-long-name:443", "edge-api-2222-p", 675, 67.5, 1, 1),
        group("canary", "gateway:443", "edge-api-3333-c", 100, 10.0, 1, 1),
    ],
    "abRules": 0,
    "metrics": [],
    "lastEvent": {
        "type": "Warning",
        "reason": "RouteDrifted",
        "time": NOW - 3900,
        "message": "listener rule showed a=500, b=500 instead of the verified a=900, b=100; restored",
    },
}
FAILED = {
    "namespace": "shop",
    "name": "cart",
    "phase": "Failed",
    "canaryWeight": 0,
    "failedChecks": 3,
    "threshold": 3,
    "revision": "0badc0de00000000",
    "promoted": "591a57b7",
    "message": "rolling back",
    "route": {
        "id": None,
        "description": "",
        "stickiness": {"enabled": False, "durationSeconds": None},
        "error": "route unreadable: rule not found",
    },
    "groups": [group("primary", "cart-primary:80", "shop-cart-0001-p", None, None, None, None)],
    "abRules": 1,
    "metrics": [{"name": "request-success-rate", "value": 87.5, "min": 99, "verdict": "fail", "message": ""}],
    "lastEvent": None,
}
BAKING = {
    "namespace": "shop",
    "name": "checkout",
    "phase": "Baking",
    "canaryWeight": 100,
    "failedChecks": 0,
    "threshold": 3,
    "revision": "82fa194f2ea3ce70",
    "promoted": "591a57b75cb8b311",
    "message": "baking at 100% with the primary warm: 240s left",
    "route": {
        "id": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/demo/1/2/0f3c",
        "description": "rule 0f3c",
        "stickiness": {"enabled": False, "durationSeconds": None},
        "error": None,
    },
    "groups": [
        group("primary", "checkout-primary:80", "shop-checkout-3f2a-p", 0, 0.0, 3, 3),
        group("canary", "checkout-canary:80", "shop-checkout-9c1d-c", 999, 100.0, 3, 3),
    ],
    "abRules": 0,
    "metrics": [
        {
            "name": "request-success-rate",
            "value": 98.0,
            "primary": 98.2,
            "relative": {"maxDelta": 0.5},
            "verdict": "pass",
            "message": "",
        },
        {
            "name": "request-duration",
            "value": 212.0,
            "primary": 190.0,
            "relative": {"maxRatio": 1.2},
            "verdict": "pass",
            "message": "",
        },
    ],
    "alarms": [{"name": "checkout-5xx", "state": "OK"}, {"name": "checkout-latency-p99", "state": "INSUFFICIENT_DATA"}],
    "lastEvent": None,
}
BINDINGS = [
    {
        "namespace": "db",
        "name": "postgres-read",
        "service": "postgres-headless",
        "targetType": "ip",
        "ready": "True",
        "reason": "Synced",
        "message": "",
        "targetGroup": "pg-read",
        "aws": {"targetGroup": "pg-read", "targetType": "ip", "registered": 3, "states": {"healthy": 2, "initial": 1}},
    },
    {
        "namespace": "db",
        "name": "postgres-write",
        "service": "postgres",
        "targetType": None,
        "ready": "False",
        "reason": "InstanceModeOnHeadlessService",
        "message": "spec.targetType: instance needs a NodePort",
        "targetGroup": "pg-write",
        "aws": {"error": "target group not found"},
    },
]


def check(name: str, text: str):
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(text + "\n")
    assert path.exists(), f"missing snapshot {path}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert text + "\n" == path.read_text()
    assert all(len(line) <= 80 for line in text.splitlines()), "status must fit 80 columns"


@pytest.mark.parametrize(
    "name,rows",
    [
        ("canary_progressing", [PROGRESSING]),
        ("canary_backend_refs", [BACKEND_REFS]),
        ("canary_failed", [FAILED]),
        ("canary_baking", [BAKING]),
        ("canary_paused", [{**PROGRESSING, "paused": True, "message": "spec.suspend is true: the rollout is frozen"}]),
        ("canary_none", []),
    ],
)
def test_canary_status_snapshots(name, rows):
    check(name, canaries.render(rows, NOW))


def test_binding_status_snapshot():
    check("bindings", bindings.render(BINDINGS))


def test_half_percent_still_shows_on_the_bar():
    assert canaries.bar(0.5).count("#") == 1 and canaries.bar(0.0).count("#") == 0
