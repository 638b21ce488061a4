import pytest

from awsctl.planning.removal import give_back, settling

YOURS = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/yours/1"
PRIMARY_PODS = {"10.0.0.1", "10.0.0.2"}


@pytest.mark.parametrize(
    ("targets", "reverted", "waited", "go", "overdue", "said"),
    [
        # the primary's pods still live in your group, as the apex selected them: wait for your pods
        ([("10.0.0.1", "healthy"), ("10.0.0.2", "healthy")], True, 5, False, False, "no healthy target of your"),
        # your pods registered, not health-checked yet (unused: no rule forwarded to the group yet)
        ([("10.0.0.1", "draining"), ("10.0.1.1", "unused")], True, 5, False, False, "1 target(s) not health"),
        ([("10.0.0.1", "draining"), ("10.0.1.1", "initial"), ("10.0.1.2", "healthy")], True, 5, False, False, "not"),
        # your pods healthy, but the primary's not deregistered yet: they are about to stop
        ([("10.0.0.1", "healthy"), ("10.0.1.1", "healthy")], True, 5, False, False, "1 of the primary's pods"),
        # ready: your pods healthy, the primary's draining
        ([("10.0.0.1", "draining"), ("10.0.1.1", "healthy"), ("10.0.1.2", "unhealthy")], True, 5, True, False, ""),
        # health checks off (a Lambda group): AWS sends traffic to it as it is
        ([("arn:aws:lambda:us-east-1:123456789012:function:web", "unavailable")], True, 5, True, False, ""),
        # an empty group after a revert: your binding has not registered yet
        ([], True, 5, False, False, "no healthy target"),
        # the deadline: given back anyway, with a warning
        ([], True, 600, True, True, "given back after 600s"),
        # no revert: the primary's pods are your group's servers; only health checks underway wait
        ([("10.0.1.1", "healthy")], False, 5, True, False, ""),
        ([("10.0.1.1", "unused")], False, 5, False, False, "not health-checked"),
        ([], False, 5, True, False, ""),  # nothing is coming: waiting would not help
        ([("10.0.1.1", "unhealthy")], False, 5, True, False, ""),
    ],
)
def test_give_back(targets, reverted, waited, go, overdue, said):
    leaving = PRIMARY_PODS if reverted else set()
    decision = give_back({YOURS: targets}, leaving, reverted, waited, 600)
    assert (decision.go, decision.overdue) == (go, overdue)
    assert said in decision.message
    if not go:
        assert "yours" in decision.message


def test_every_group_must_be_ready():
    other = YOURS.replace("yours/1", "other/2")
    groups = {YOURS: [("10.0.1.1", "healthy")], other: [("10.0.2.1", "initial")]}
    decision = give_back(groups, set(), False, 0, 600)
    assert not decision.go and "other" in decision.message and "yours" not in decision.message
    assert give_back({}, set(), True, 0, 600).go


@pytest.mark.parametrize(
    ("released_at", "now", "seconds", "waits"),
    [
        (None, 100.0, 30, "waiting 30s more"),  # just given back: the whole allowance
        (100.0, 110.0, 30, "waiting 20s more"),
        (100.0, 130.0, 30, None),  # the nodes have had the allowance: the groups may go
        (None, 100.0, 0, None),  # no allowance asked for
    ],
)
def test_the_groups_go_only_once_the_nodes_have_had_the_allowance(released_at, now, seconds, waits):
    said = settling(released_at, now, seconds)
    assert (said is None) == (waits is None)
    if waits:
        assert said.startswith(waits) and "load balancer's nodes" in said
