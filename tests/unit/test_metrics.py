"""Metric arithmetic on recorded GetMetricData results (moto cannot serve p99 or metric math)."""

import json
from pathlib import Path

from awsctl.analysis import metrics as m

RECORDED = json.loads((Path(__file__).parent / "recorded" / "get_metric_data.json").read_text())
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/50dc6c495c0c9188/f2f7dc8efc522ab2"
GROUPS = ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-c/73e2d6bc24d8a067",
          "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-c2/83e2d6bc24d8a067"]
SUCCESS = m.MetricCheck("request-success-rate", 60, min=99.0)
DURATION = m.MetricCheck("request-duration", 30, max=500.0)
CUSTOM = m.MetricCheck("elb-5xx-rate", 60, max=1.0, query=({
    "Id": "rate", "Expression": "100*errors/requests"}, {
    "Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {
        "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count",
        "Dimensions": [{"Name": "TargetGroup", "Value": "{{ target_group }}"},
                       {"Name": "LoadBalancer", "Value": "{{load_balancer}}"}]}, "Period": 60, "Stat": "Sum"}}))


def test_dimensions_and_periods():
    assert m.target_group_dimension(GROUPS[0]) == "targetgroup/web-c/73e2d6bc24d8a067"
    assert m.load_balancer_dimension(LISTENER) == "app/demo/50dc6c495c0c9188"
    assert [m.period(s) for s in (0.5, 7, 30, 45, 60, 90)] == [1, 10, 30, 60, 60, 120]


def test_success_rate_sums_every_bucket_of_every_canary_group():
    queries = m.queries(SUCCESS, 0, GROUPS, LISTENER)
    assert [q["Id"] for q in queries] == ["m0g0_req", "m0g0_err", "m0g1_req", "m0g1_err"]
    dims = queries[0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims == [{"Name": "TargetGroup", "Value": "targetgroup/web-c/73e2d6bc24d8a067"},
                    {"Name": "LoadBalancer", "Value": "app/demo/50dc6c495c0c9188"}]
    result = m.evaluate(SUCCESS, 0, GROUPS, RECORDED["success"])
    assert result.ok is True and round(result.value, 3) == round(100 * (1 - 6 / 3200), 3)


def test_a_5xx_burst_fails_and_silence_holds():
    burst = m.evaluate(SUCCESS, 0, GROUPS[:1], RECORDED["burst"])
    assert burst.ok is False and burst.value == 88.0 and "below the minimum 99" in burst.message
    silent = m.evaluate(SUCCESS, 0, GROUPS[:1], RECORDED["silent"])
    assert silent.ok is None and silent.value is None and "no requests" in silent.message
    assert m.verdict([burst, silent])[0] is False
    assert m.verdict([silent, m.evaluate(SUCCESS, 0, GROUPS, RECORDED["success"])])[0] is None


def test_duration_is_the_worst_groups_p99_in_milliseconds():
    queries = m.queries(DURATION, 1, GROUPS, LISTENER)
    assert {q["MetricStat"]["Stat"] for q in queries} == {"p99"} and queries[0]["MetricStat"]["Period"] == 30
    result = m.evaluate(DURATION, 1, GROUPS, RECORDED["duration"])
    assert result.ok is False and result.value == 512.0


def test_custom_queries_are_templated_per_group_and_the_worst_value_counts():
    queries = m.queries(CUSTOM, 2, GROUPS, LISTENER)
    assert [q["Id"] for q in queries] == ["m2g0_rate", "m2g0_errors", "m2g1_rate", "m2g1_errors"]
    assert queries[3]["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == "targetgroup/web-c2/83e2d6bc24d8a067"
    assert queries[1]["MetricStat"]["Metric"]["Dimensions"][1]["Value"] == "app/demo/50dc6c495c0c9188"
    result = m.evaluate(CUSTOM, 2, GROUPS, RECORDED["custom"])
    assert result.value == 2.5 and result.ok is False  # most recent value of the worse group
    assert CUSTOM.query[0]["Id"] == "rate"  # the spec's queries are not mutated
