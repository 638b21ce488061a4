import pytest

from awsctl.api import canary
from awsctl.api.schema import SpecError

BASE = {
    "targetRef": {"name": "web"},
    "service": {"port": 80, "targetPort": 8080},
    "loadBalancer": {"listenerARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/c"},
}

NLB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/n/b/c"
ALB2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/d"  # the same ALB, another listener


def parse(**overrides):
    return canary.CanarySpec.parse({**BASE, **overrides})


def test_defaults_and_permille_steps():
    spec = parse(analysis={"stepWeights": [0.5, 5, 20], "maxWeight": 50, "interval": "1s"})
    assert spec.service.name == "web" and spec.service.headless is None
    assert spec.analysis.steps == (5, 50, 200, 500) and spec.analysis.interval_seconds == 1.0
    assert spec.load_balancer.target_type == "ip" and spec.load_balancer.rule is None
    assert parse(analysis={"stepWeight": 15}).analysis.steps == (150, 300, 450, 500)


@pytest.mark.parametrize(
    ("interval", "metric_interval", "tolerance"),
    [
        ("30s", "1m", 8),  # 4 one-minute periods (one to start, one to run, two to publish) / 30 s
        ("5s", "1m", 48),
        ("1m", "1m", 4),
        ("2m", "1m", 2),  # never below 2
        ("30s", "5m", 40),  # five-minute periods take five times as long
        ("30s", None, 2),  # no metrics: nothing to wait for
    ],
)
def test_the_no_data_tolerance_is_derived_from_the_periods_and_the_interval(interval, metric_interval, tolerance):
    """ALB publishes per minute, a minute or more late, and no zero counts: a fixed default of 2 failed healthy
    low-traffic canaries. Unset, the tolerance covers the time a period takes to show."""
    metrics = [{"name": "request-success-rate", "interval": metric_interval, "thresholdRange": {"min": 99}}]
    analysis = {"interval": interval, "metrics": metrics if metric_interval else []}
    assert parse(analysis=analysis).analysis.no_data_tolerance == tolerance
    assert parse(analysis={**analysis, "noDataTolerance": 3}).analysis.no_data_tolerance == 3  # as written


@pytest.mark.parametrize("value,seconds", [("1m30s", 90.0), ("500ms", 0.5), (2, 2.0), ("3", 3.0)])
def test_durations(value, seconds):
    assert canary.parse_duration(value, "f") == seconds


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"analysis": {"stepWeight": 5, "stepWeights": [1]}}, "spec.analysis.stepWeights"),
        ({"analysis": {"maxWeight": 101}}, "spec.analysis.maxWeight"),
        ({"analysis": {"stepWeight": 0.25}}, "spec.analysis.stepWeight"),
        ({"analysis": {"stepWeights": [5, 2]}}, "spec.analysis.stepWeights"),
        ({"analysis": {"iterations": 3, "stepWeight": 5}}, "spec.analysis.iterations"),
        ({"analysis": {"interval": "soon"}}, "spec.analysis.interval"),
        (
            {"analysis": {"webhooks": [{"name": "x", "type": "nope", "url": "http://a"}]}},
            "spec.analysis.webhooks[0].type",
        ),
        (
            {"service": {"port": 80, "backendRefs": {"primary": [{"name": f"s{i}", "port": 80} for i in range(6)]}}},
            "spec.service.backendRefs",
        ),
        ({"loadBalancer": {}}, "spec.loadBalancer.listenerARN"),
        ({"targetRef": {"kind": "StatefulSet", "name": "x"}}, "spec.targetRef.kind"),
        ({"analysis": {"webhooks": [{"name": "x", "url": "http://"}]}}, "spec.analysis.webhooks[0].url"),
        ({"analysis": {"webhooks": [{"name": "x", "url": "http://a b/"}]}}, "spec.analysis.webhooks[0].url"),
        (
            {"analysis": {"metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99, "max": 9}}]}},
            "spec.analysis.metrics[0].thresholdRange.min",
        ),
        (
            {"loadBalancer": {**BASE["loadBalancer"], "targetGroup": {"healthCheck": {"matcher": "abc"}}}},
            "spec.loadBalancer.targetGroup.healthCheck.matcher",
        ),
        # NLB: the listener is the route; it carries connections, not requests
        ({"loadBalancer": {"listenerARN": NLB, "rule": {"priority": 3}}}, "spec.loadBalancer.rule"),
        (
            {"loadBalancer": {"listenerARN": NLB, "targetGroup": {"protocol": "HTTP"}}},
            "spec.loadBalancer.targetGroup.protocol",
        ),
        (
            {"loadBalancer": {**BASE["loadBalancer"], "targetGroup": {"protocol": "TCP"}}},
            "spec.loadBalancer.targetGroup.protocol",
        ),
        (
            {"loadBalancer": {"listenerARN": NLB, "targetGroup": {"healthCheck": {"path": "/healthz"}}}},
            "spec.loadBalancer.targetGroup.healthCheck.protocol",
        ),
        (
            {
                "loadBalancer": {"listenerARN": NLB},
                "analysis": {"iterations": 2, "match": [{"sourceIPs": ["10.0.0.0/8"]}]},
            },
            "spec.analysis.match",
        ),
        (
            {
                "loadBalancer": {"listenerARN": NLB},
                "analysis": {"metrics": [{"name": "request-duration", "thresholdRange": {"max": 5}}]},
            },
            "spec.analysis.metrics[0].name",
        ),
        (
            {"analysis": {"metrics": [{"name": "connection-success-rate", "thresholdRange": {"min": 99}}]}},
            "spec.analysis.metrics[0].name",
        ),
        # several routes: all on the first one's load balancer, no A/B rules above them
        (
            {"loadBalancer": {**BASE["loadBalancer"], "routes": [{"listenerARN": NLB}]}},
            "spec.loadBalancer.routes[0].listenerARN",
        ),
        (
            {
                "loadBalancer": {**BASE["loadBalancer"], "rule": {"priority": 9}, "routes": [{"listenerARN": ALB2}]},
                "analysis": {"iterations": 2, "match": [{"sourceIPs": ["10.0.0.0/8"]}]},
            },
            "spec.analysis.match",
        ),
        (  # ALB: 3 values per condition (and 5 per rule)
            {"loadBalancer": {**BASE["loadBalancer"], "rule": {"priority": 1, "hosts": ["a", "b", "c", "d"]}}},
            "spec.loadBalancer.rule.hosts",
        ),
    ],
)
def test_bad_specs_name_the_field(overrides, field):
    with pytest.raises(SpecError) as err:
        parse(**overrides)
    assert err.value.field == field


def test_canary_crd_contract():
    crd = canary.definition()
    assert crd["metadata"]["name"] == "canaries.awsctl.io"
    version = crd["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Status", "Weight", "FailedChecks", "LastTransitionTime"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec["loadBalancer"]["properties"]) >= {"listenerARN", "rule", "targetType", "targetGroup", "stickiness"}
    assert spec["analysis"]["properties"]["maxWeight"]["maximum"] == 100


def test_alarms_bake_relative_thresholds_and_the_no_data_tolerance():
    spec = parse(
        analysis={
            "stepWeights": [10],
            "alarms": [{"name": "web-5xx"}, {"name": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-latency"}],
            "noDataTolerance": 0,
            "bake": {"weight": 95, "duration": "10m"},  # at 100% the relative metric below is refused
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"maxDelta": 0.5}, "lookback": "5m"},
                {"name": "request-duration", "thresholdRange": {"max": 500}},
            ],
        }
    )
    a = spec.analysis
    assert a.alarms == ("web-5xx", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-latency")
    assert a.bake == canary.Bake(950, 600.0) and a.no_data_tolerance == 0
    assert parse(analysis={"bake": {"duration": "10m"}}).analysis.bake == canary.Bake(1000, 600.0)  # the default
    assert a.metrics[0].relative.max_delta == 0.5 and a.metrics[0].lookback_seconds == 300
    assert a.metrics[1].relative is None  # absolute stays the default
    assert parse(analysis={}).analysis.no_data_tolerance == 2 and parse(analysis={}).analysis.bake is None
    with pytest.raises(SpecError, match="built-in metrics"):
        parse(
            analysis={
                "metrics": [
                    {"name": "custom", "thresholdRange": {"maxRatio": 1.2}, "query": [{"Id": "q", "Expression": "1"}]}
                ]
            }
        )


def test_blue_green_built_in_metrics_are_named_as_blind():
    blue_green = parse(
        analysis={
            "iterations": 3,
            "metrics": [
                {"name": "errors", "thresholdRange": {"max": 1}, "query": [{"Id": "q", "Expression": "1"}]},
                {"name": "request-success-rate", "thresholdRange": {"min": 99}},
            ],
        }
    )
    assert blue_green.analysis.blind_metrics() == [1]
    assert (
        parse(
            analysis={"stepWeight": 10, "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}
        ).analysis.blind_metrics()
        == []
    )


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"service": {"port": "80"}}, "spec.service.port"),  # strict, as the apiserver: "80" is not a number
        ({"service": {"port": 80, "targetPort": 1.5}}, "spec.service.targetPort"),  # int-or-string: no union tags
        ({"alerts": [{"severity": "warn"}]}, "spec.alerts[0].providerRef"),  # a missing object is named
        ({"analysis": {"webhooks": [{"name": "x", "url": "ftp://a"}]}}, "spec.analysis.webhooks[0].url"),
        (
            {"loadBalancer": {"listenerARN": BASE["loadBalancer"]["listenerARN"], "rule": {}}},
            "spec.loadBalancer.rule.priority",
        ),
        (
            {"analysis": {"match": [{"headers": {"x-user": {"exact": 1}}}], "iterations": 2}},
            "spec.analysis.match[0].headers.x-user.exact",
        ),
    ],
)
def test_model_errors_name_the_field_as_written(overrides, field):
    with pytest.raises(SpecError) as err:
        parse(**overrides)
    assert err.value.field == field


def test_an_nlb_canary_gets_tcp_groups_checked_by_tcp_and_its_own_built_in_check():
    spec = parse(
        loadBalancer={"listenerARN": NLB},
        analysis={"metrics": [{"name": "connection-success-rate", "thresholdRange": {"min": 99}}]},
    )
    assert spec.load_balancer.network and spec.load_balancer.target_group.protocol == "TCP"
    check = spec.analysis.metrics[0]
    assert check.built_in and check.higher_is_better
    assert parse().load_balancer.target_group.protocol == "HTTP" and not parse().load_balancer.network
    routes = parse(loadBalancer={**BASE["loadBalancer"], "routes": [{"listenerARN": ALB2, "rule": {"priority": 4}}]})
    assert routes.load_balancer.on_route(0).listener_arn == ALB2 and routes.load_balancer.on_route(0).rule.priority == 4


def test_every_default_is_the_declared_one():
    """The parser's defaults are the schema's: one declaration per field."""
    spec = parse()
    props = canary.schema()["properties"]["spec"]["properties"]
    lb, tg = props["loadBalancer"]["properties"], props["loadBalancer"]["properties"]["targetGroup"]["properties"]
    analysis = props["analysis"]["properties"]
    assert spec.load_balancer.target_group.port == tg["port"]["default"] == 80
    assert spec.load_balancer.target_group.deregistration_delay == tg["deregistrationDelaySeconds"]["default"] == 30
    assert spec.load_balancer.stickiness_seconds == lb["stickiness"]["properties"]["durationSeconds"]["default"] == 300
    assert spec.analysis.threshold == analysis["threshold"]["default"] == 5
    assert spec.analysis.interval_seconds == 60 and analysis["interval"]["default"] == "1m"
    assert spec.progress_deadline_seconds == props["progressDeadlineSeconds"]["default"] == 600
    hooks = parse(analysis={"webhooks": [{"name": "h", "url": "http://a"}]}).analysis.webhooks
    assert hooks[0].timeout_seconds == 10 and analysis["webhooks"]["items"]["properties"]["timeout"]["default"] == "10s"


def test_generated_schemas_are_structural():
    """What the apiserver demands of a CRD schema: every node typed (or int-or-string, or free-form),
    no $ref, anyOf or title left from JSON schema."""
    from awsctl.api import alert_provider, binding

    def nodes(node, path):
        yield path, node
        for name, sub in (node.get("properties") or {}).items():
            yield from nodes(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from nodes(node[key], f"{path}[{key}]")

    for module in (canary, binding, alert_provider):
        for path, node in nodes(module.schema(), module.KIND):
            assert not {"$ref", "$defs", "anyOf", "allOf", "title"} & set(node), path
            free = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
            assert "type" in node or free, f"{path} has no type"
            assert "default" not in node or node["default"] is not None, path


@pytest.mark.parametrize("matcher", ["200", "200,202", "200-299", "200-299,404"])
def test_health_check_matchers_alb_accepts_are_accepted(matcher):
    lb = {**BASE["loadBalancer"], "targetGroup": {"healthCheck": {"matcher": matcher}}}
    assert parse(loadBalancer=lb).load_balancer is not None


def test_aws_refusals_of_the_input_are_conditions_not_retries():
    from botocore.exceptions import ClientError

    from awsctl.controllers.errors import refusal

    for code in ("TooManyUniqueTargetGroupsPerLoadBalancer", "OperationNotPermitted", "UnsupportedProtocol"):
        err = ClientError({"Error": {"Code": code, "Message": "no"}}, "CreateRule")
        refused = refusal(err, "a change", "spec.loadBalancer")
        assert (
            refused is not None and refused.reason == code and "spec.loadBalancer: AWS refused a change" in str(refused)
        )
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "CreateRule")
    assert refusal(throttled, "a change") is None


def test_a_bake_at_100_percent_refuses_metrics_relative_to_the_primary():
    relative = {"name": "request-duration", "interval": "1m", "thresholdRange": {"maxRatio": 1.2}}
    with pytest.raises(SpecError) as err:
        parse(analysis={"metrics": [relative], "bake": {"duration": "10m"}})  # weight defaults to 100
    assert err.value.field == "spec.analysis.bake.weight" and "request-duration" in str(err.value)
    assert parse(analysis={"metrics": [relative], "bake": {"weight": 95, "duration": "10m"}}).analysis.bake
    absolute = {"name": "request-duration", "interval": "1m", "thresholdRange": {"max": 500}}
    assert parse(analysis={"metrics": [absolute], "bake": {"duration": "10m"}}).analysis.bake


@pytest.mark.parametrize(
    "refs, keys",
    [
        ({}, [("primary", "web-primary:80", True), ("canary", "web-canary:80", True)]),
        (
            {"canary": [{"name": "v2a", "port": "http"}, {"name": "v2b", "port": 8080, "weight": 3}]},
            [("primary", "web-primary:80", True), ("canary", "v2a:http", False), ("canary", "v2b:8080", False)],
        ),
        (
            {"primary": [{"name": "blue", "port": 80}]},
            [("primary", "blue:80", False), ("canary", "web-canary:80", True)],
        ),
    ],
)
def test_each_side_s_services_and_their_keys(refs, keys):
    """One derivation for the reconciler (which Services to bind) and for deletion (which group names to
    look for): a ref's key is its Service and port, a side without refs has the generated Service."""
    spec = parse(service={"name": "web", "port": 80, "backendRefs": refs})
    sides = spec.service.backends()
    assert [(s.role, s.key, s.generated) for s in sides] == keys
    assert all(s.field.startswith(f"spec.service.backendRefs.{s.role}[") for s in sides if not s.generated)


def test_a_side_keeps_its_pods_for_the_nodes_and_the_whole_stickiness_duration():
    lb = parse().load_balancer
    assert (lb.propagation_seconds, lb.release_seconds) == (30, 30.0)
    assert parse().termination_delay_seconds == 30  # the primary's termination delay agrees with it
    sticky = parse(loadBalancer={**BASE["loadBalancer"], "stickiness": {"enabled": True, "durationSeconds": 3600}})
    assert sticky.load_balancer.release_seconds == 3630.0  # every cookie given out has expired
    quick = parse(loadBalancer={**BASE["loadBalancer"], "propagationSeconds": 0}, terminationDelaySeconds=5)
    assert (quick.load_balancer.release_seconds, quick.termination_delay_seconds) == (0.0, 5)
    with pytest.raises(SpecError) as err:  # a day-long cookie would keep a rolled-back canary's pods a day
        parse(loadBalancer={**BASE["loadBalancer"], "stickiness": {"enabled": True, "durationSeconds": 86400}})
    assert err.value.field == "spec.loadBalancer.stickiness.durationSeconds"
