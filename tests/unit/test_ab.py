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
    first, second = wire.rules(match, hosts=("app.example.com",))  # a cookie takes two rules
    conds = first
    assert conds[0] == {"Field": "host-header", "HostHeaderConfig": {"Values": ["app.example.com"]}}
    assert conds[1]["HttpHeaderConfig"] == {"HttpHeaderName": "x-canary", "Values": ["in\\*ider\\?"]}  # exact
    assert conds[2]["HttpHeaderConfig"]["Values"] == ["beta-*"]
    assert conds[3]["QueryStringConfig"] == {"Values": [{"Key": "flag", "Value": "on"}]}
    assert conds[4] == {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}
    # The cookie is anchored at cookie boundaries: alone, first, last (rule one), or in the middle (rule two).
    assert conds[5]["HttpHeaderConfig"] == {
        "HttpHeaderName": "Cookie",
        "Values": ["canary=always", "canary=always;*", "*; canary=always"],
    }
    assert second[:5] == first[:5] and second[5]["HttpHeaderConfig"]["Values"] == ["*; canary=always;*"]
    with pytest.raises(wire.MatchError, match="8 condition values"):
        wire.check_limits(first, "m")


def test_an_anchored_cookie_matches_that_cookie_and_no_other():
    """ALB's wildcards (* any run, ? one character; case ignored, as ALB compares header values) over
    real Cookie headers: the patterns accept exactly the headers that carry canary=always."""
    import fnmatch

    def matched(header):
        values = [v for rule in wire.cookie_patterns("canary", "always") for v in rule]
        return any(fnmatch.fnmatchcase(header.lower(), v.lower()) for v in values)

    for header in ("canary=always", "canary=always; a=1", "a=1; canary=always", "a=1; canary=always; b=2"):
        assert matched(header), header
    for header in ("notcanary=always", "canary=alwaysx", "a=1; xcanary=always; b=2", "a=canary=always", "canary=never"):
        assert not matched(header), header


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
        (  # one cookie per entry: two ANDed would take four rules
            {"iterations": 2, "match": [{"cookies": {"a": "1", "b": "2"}}]},
            {"priority": 5},
            "spec.analysis.match[0].cookies",
        ),
        (  # 6 wildcards in the second cookie rule: 4 in the header, 2 in the anchored cookie
            {"iterations": 2, "match": [{"cookies": {"a": "1"}, "headers": {"x": {"wildcard": "*a*b*c*"}}}]},
            {"priority": 5},
            "spec.analysis.match[0]",
        ),
        (  # a cookie takes two rules: priority 2 has room for one
            {"iterations": 2, "match": [{"cookies": {"a": "1"}}]},
            {"priority": 2},
            "spec.loadBalancer.rule.priority",
        ),
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
