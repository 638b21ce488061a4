"""Where a Canary's target groups go, and when a move's old groups are retired (planning/placement.py)."""

import pytest

from awsctl.planning import naming, objects
from awsctl.planning.placement import placement, retirement

LB_A = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/111"
LB_B = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/b/222"
LISTENER_A = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/111/l1"
LISTENER_A2 = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/111/l2"
LISTENER_B = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/b/222/l9"
RULE_A = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/a/111/l1/r1"
GROUPS = {"primary": ["tg-p"], "canary": ["tg-c"]}


@pytest.mark.parametrize(
    "status, listener, key, moving",
    [
        ({}, LISTENER_B, "", False),  # nothing made yet: the first groups carry no key
        ({"targetGroups": GROUPS, "listenerRule": {"arn": RULE_A, "listener": LISTENER_A}}, LISTENER_A2, "", False),
        # status from before groupsAt: the groups' load balancer is the recorded route's
        ({"targetGroups": GROUPS, "listenerRule": {"arn": RULE_A, "listener": LISTENER_A}}, LISTENER_B, "b", True),
        ({"targetGroups": GROUPS, "warmupRule": RULE_A}, LISTENER_B, "b", True),  # only warmed up on A
        ({"targetGroups": GROUPS, "warmupRule": RULE_A}, LISTENER_A2, "", False),  # warmed up on this one
        ({"targetGroups": GROUPS, "listenerRule": {"arn": RULE_A}}, LISTENER_A2, "", False),  # an older record
        ({"targetGroups": GROUPS, "groupsAt": {"loadBalancer": LB_B, "key": "k1"}}, LISTENER_B, "k1", False),
        ({"targetGroups": GROUPS, "groupsAt": {"loadBalancer": LB_B, "key": "k1"}}, LISTENER_A, "a", True),
    ],
)
def test_groups_go_where_the_spec_listener_is(status, listener, key, moving):
    place = placement(status, listener)
    want = {"a": naming.load_balancer_key(LB_A), "b": naming.load_balancer_key(LB_B)}.get(key, key)
    assert place.key == want and (place.retiring is not None) is moving
    assert place.load_balancer == naming.load_balancer_arn(listener)


def test_a_move_retires_the_recorded_groups_and_keeps_an_earlier_move_s():
    status = {
        "targetGroups": GROUPS,
        "groupsAt": {"loadBalancer": LB_B, "key": "k1"},
        "retiringGroups": {"loadBalancer": LB_A, "arns": ["old-p", "old-c"], "since": None},
    }
    place = placement(status, LISTENER_A)
    assert place.retiring == {"loadBalancer": LB_B, "arns": ["old-p", "old-c", "tg-p", "tg-c"], "since": None}


RETIRING = {"retiringGroups": {"arns": ["old-p"]}}


@pytest.mark.parametrize(
    "status, since, now, todo",
    [
        ({}, None, 100.0, "none"),
        ({**RETIRING, "listenerRule": None}, None, 100.0, "wait"),  # the new route is not taken yet
        ({**RETIRING, "listenerRule": {"arn": "r"}, "retiringRule": {"arn": "old"}}, None, 100.0, "wait"),
        ({**RETIRING, "listenerRule": {"arn": "r"}}, None, 100.0, "start"),  # old route given back
        # a further route (spec.loadBalancer.routes) still forwards to the old groups
        ({**RETIRING, "listenerRule": {"arn": "r"}, "routes": [{"retiringRule": {"arn": "o2"}}]}, None, 100.0, "wait"),
        ({**RETIRING, "listenerRule": {"arn": "r"}}, 80.0, 100.0, "wait"),  # nodes may still route by it
        ({**RETIRING, "listenerRule": {"arn": "r"}}, 70.0, 100.0, "remove"),
    ],
)
def test_old_groups_go_a_propagation_wait_after_the_old_route(status, since, now, todo):
    assert retirement(status, now, 30.0, since) == todo


def test_a_load_balancer_is_found_from_a_listener_or_a_rule():
    assert naming.load_balancer_arn(LISTENER_A) == LB_A == naming.load_balancer_arn(RULE_A)
    assert naming.load_balancer_arn(LB_A) == LB_A


def test_names_after_a_move_differ_and_bindings_answer_the_gate_pods_carry():
    first = naming.target_group_name("c", "ns", "web", "primary", "web:80")
    moved = naming.target_group_name("c", "ns", "web", "primary", "web:80", "abc123")
    assert first != moved and len(moved) <= 32
    name = naming.binding_name("web", "primary", "", True, "abc123")
    assert name == "web-primary-abc123"
    canary = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}}
    binding = objects.child_binding(name, canary, "primary", "web-primary", 80, "arn", "ip", gate="web-primary")
    assert objects.gate_of(binding) == naming.readiness_gate("web-primary")
    plain = objects.child_binding("web-primary", canary, "primary", "web-primary", 80, "arn", "ip", gate="web-primary")
    assert "annotations" not in plain["metadata"] and objects.gate_of(plain) == naming.readiness_gate("web-primary")
