import pytest

from awsctl.api import canary
from awsctl.api.schema import SpecError

BASE = {
    "targetRef": {"name": "web"},
    "service": {"port": 80, "targetPort": 8080},
    "loadBalancer": {"listenerARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/c"},
}


def parse(**overrides):
    return canary.CanarySpec.parse({**BASE, **overrides})


def test_defaults_and_permille_steps():
    spec = parse(analysis={"stepWeights": [0.5, 5, 20], "maxWeight": 50, "interval": "1s"})
    assert spec.service.name == "web" and spec.service.headless is None
    assert spec.analysis.steps == (5, 50, 200, 500) and spec.analysis.interval_seconds == 1.0
    assert spec.load_balancer.target_type == "ip" and spec.load_balancer.rule is None
    assert parse(analysis={"stepWeight": 15}).analysis.steps == (150, 300, 450, 500)


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
            "bake": {"duration": "10m"},
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"maxDelta": 0.5}, "lookback": "5m"},
                {"name": "request-duration", "thresholdRange": {"max": 500}},
            ],
        }
    )
    a = spec.analysis
    assert a.alarms == ("web-5xx", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-latency")
    assert a.bake == canary.Bake(1000, 600.0) and a.no_data_tolerance == 0
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
