"""A side is ready only when every endpoint its bindings want is registered and healthy in AWS."""

from awsctl.controllers.canary_reconciler import SideHealth

READY = [{"type": "Ready", "status": "True"}]


def health(**groups):
    return SideHealth(lambda: groups)


def test_one_healthy_target_of_three_is_not_ready():
    side = health(
        p={"desiredTargets": 3, "healthyTargets": 1, "targetHealth": {"healthy": 1, "initial": 2}, "conditions": READY}
    )
    assert not side.ready(["p"])
    assert side.serving(["p"]) == {"p": 1}  # not void, though: drift repair may still route to it
    assert side.describe(["p"]) == "p: 1/3 healthy (2 initial)"


def test_every_desired_target_healthy_is_ready_unless_fewer_than_the_replicas_are_wanted():
    side = health(p={"desiredTargets": 1, "healthyTargets": 1, "conditions": READY})
    assert side.ready(["p"])
    assert not side.ready(["p"], {"p": 3})  # the slice still lags the Deployment: 1 of 3 pods
    assert not side.ready(["p", "missing"]) and not side.ready([])


def test_a_refused_binding_is_not_ready():
    side = health(p={"desiredTargets": 2, "healthyTargets": 2, "conditions": [{"type": "Ready", "status": "False"}]})
    assert not side.ready(["p"])
