import pytest

from awsctl.api import canary
from awsctl.api.phases import Phase
from awsctl.api.schema import SpecError
from awsctl.planning.rollout import Observed, Policy, RolloutState, ab_routes
from awsctl.routing import alb_wire as wire

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/c"


def test_match_becomes_anded_alb_conditions_with_the_rules_hosts():
    match = canary.Match(
        headers=(canary.HeaderMatch("x-canary", "in*ider?"), canary.HeaderMatch("x-user", "beta-*", True)),
        cookies=(("canary", "always"),),
        query=(("flag", "on"),),
        source_ips=("10.0.0.0/8",),
    )
    conds = wire.conditions(match, hosts=("app.example.com",))
    assert conds[0] == {"Field": "host-header", "HostHeaderConfig": {"Values": ["app.example.com"]}}
    assert conds[1]["HttpHeaderConfig"] == {"HttpHeaderName": "x-canary", "Values": ["in\\*ider\\?"]}  # exact
    assert conds[2]["HttpHeaderConfig"]["Values"] == ["beta-*"]
    assert conds[3]["HttpHeaderConfig"] == {"HttpHeaderName": "Cookie", "Values": ["*canary=always*"]}
    assert conds[4]["QueryStringConfig"] == {"Values": [{"Key": "flag", "Value": "on"}]}
    assert conds[5] == {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}
    with pytest.raises(wire.MatchError, match="6 condition values"):
        wire.check_limits(conds, "m")


def test_priorities_sit_above_the_rule_and_exist_only_while_analysing():
    assert wire.priorities(10, 2) == [9, 8]
    policy = Policy(steps=(10,), max_weight=10, threshold=1, ab_testing=True)
    ready = Observed("v2", 0.0, True, True, True, True, True)
    progressing, promoting = RolloutState(phase=Phase.PROGRESSING), RolloutState(phase=Phase.PROMOTING)
    assert ab_routes(policy, progressing, ready)
    assert not ab_routes(policy, progressing, Observed("v2", 0.0, True, True, True, True, False))
    assert not ab_routes(policy, promoting, ready)


def spec(analysis, rule=None):
    return {
        "targetRef": {"name": "web"},
        "service": {"port": 80},
        "loadBalancer": {"listenerARN": LISTENER, **({"rule": rule} if rule else {})},
        "analysis": analysis,
    }


@pytest.mark.parametrize(
    "analysis,rule,field",
    [
        ({"match": [{"headers": {"x": {"exact": "1"}}}]}, {"priority": 5}, "spec.analysis.match"),  # no iterations
        ({"iterations": 2, "match": [{"headers": {"x": {"exact": "1"}}}]}, None, "spec.analysis.match"),
        (
            {"iterations": 2, "match": [{"headers": {"x": {"exact": "1"}}}] * 2},
            {"priority": 2},
            "spec.loadBalancer.rule.priority",
        ),
        (
            {"iterations": 2, "match": [{"cookies": {"a": "1", "b": "2", "c": "3"}}]},
            {"priority": 5},
            "spec.analysis.match[0]",
        ),  # 6 wildcards
        ({"iterations": 2, "match": [{}]}, {"priority": 5}, "spec.analysis.match[0]"),
        ({"iterations": 2, "match": [{"headers": {"x": {}}}]}, {"priority": 5}, "spec.analysis.match[0].headers.x"),
    ],
)
def test_bad_ab_specs_name_the_field(analysis, rule, field):
    with pytest.raises(SpecError) as err:  # the API's rules, then ALB's limits (as the reconciler checks)
        wire.check_ab_limits(canary.CanarySpec.parse(spec(analysis, rule)))
    assert err.value.field == field


def test_metrics_parse_and_bad_metrics():
    parsed = canary.CanarySpec.parse(
        spec({"metrics": [{"name": "request-success-rate", "interval": "30s", "thresholdRange": {"min": 99}}]})
    )
    assert parsed.analysis.metrics[0].interval_seconds == 30 and parsed.analysis.metrics[0].min == 99
    for metric, field in (
        ({"name": "custom", "thresholdRange": {"max": 1}}, "spec.analysis.metrics[0].query"),
        ({"name": "request-duration"}, "spec.analysis.metrics[0].thresholdRange"),
    ):
        with pytest.raises(SpecError) as err:
            canary.CanarySpec.parse(spec({"metrics": [metric]}))
        assert err.value.field == field
