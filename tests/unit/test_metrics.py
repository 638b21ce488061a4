"""Metric arithmetic on recorded GetMetricData responses (moto cannot serve p99 or metric math)."""

import json
from pathlib import Path

from awsctl.analysis import metrics as m

RECORDED = json.loads((Path(__file__).parent / "recorded" / "get_metric_data.json").read_text())
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/demo/50dc6c495c0c9188/f2f7dc8efc522ab2"
GROUPS = [
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-c/73e2d6bc24d8a067",
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-c2/83e2d6bc24d8a067",
]
PRIMARY = ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-p/63e2d6bc24d8a067"]
SUCCESS = m.MetricCheck("request-success-rate", 60, min=99.0)
DURATION = m.MetricCheck("request-duration", 30, max=500.0)
CUSTOM = m.MetricCheck(
    "elb-5xx-rate",
    60,
    max=1.0,
    query=(
        {"Id": "rate", "Expression": "100*errors/requests"},
        {
            "Id": "errors",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": [
                        {"Name": "TargetGroup", "Value": "{{ target_group }}"},
                        {"Name": "LoadBalancer", "Value": "{{load_balancer}}"},
                    ],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        },
        {
            "Id": "requests",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": "RequestCount",
                    "Dimensions": [
                        {"Name": "TargetGroup", "Value": "{{ target_group }}"},
                        {"Name": "LoadBalancer", "Value": "{{load_balancer}}"},
                    ],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        },
    ),
)


def recorded(name):
    return m.series_of([RECORDED[name]])


def test_dimensions_and_periods_of_at_least_a_minute_for_alb_metrics():
    assert m.target_group_dimension(GROUPS[0]) == "targetgroup/web-c/73e2d6bc24d8a067"
    assert m.load_balancer_dimension(LISTENER) == "app/demo/50dc6c495c0c9188"
    # ALB publishes per minute: a 5 s interval still queries 60 s periods; high-resolution custom metrics may not.
    assert [m.period(s) for s in (0.5, 7, 30, 45, 60, 90)] == [60, 60, 60, 60, 60, 120]
    assert [m.period(s, namespace=None) for s in (0.5, 7, 30, 90)] == [1, 10, 30, 120]
    assert {q["MetricStat"]["Period"] for q in m.queries(DURATION, 1, GROUPS, LISTENER)} == {60}


def test_the_look_back_is_ten_periods_by_default_and_can_be_set():
    assert m.lookback(SUCCESS) == 600 and m.lookback(m.MetricCheck("request-success-rate", 5, min=99)) == 600
    assert m.lookback(m.MetricCheck("request-success-rate", 60, min=99, lookback_seconds=180)) == 180
    # An old period still counts when the current minutes have not been published yet.
    stale = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("stale"))
    assert stale.ok is True and stale.value == 100.0


def test_success_rate_takes_the_latest_period_of_every_canary_group():
    queries = m.queries(SUCCESS, 0, GROUPS, LISTENER)
    assert [q["Id"] for q in queries][:5] == ["m0g0_req", "m0g0_err0", "m0g0_err1", "m0g0_err2", "m0g0_err3"]
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in queries} == {
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "TargetConnectionErrorCount",
        "HTTPCode_ELB_502_Count",
        "HTTPCode_ELB_504_Count",
    }
    dims = queries[0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims == [
        {"Name": "TargetGroup", "Value": "targetgroup/web-c/73e2d6bc24d8a067"},
        {"Name": "LoadBalancer", "Value": "app/demo/50dc6c495c0c9188"},
    ]
    result = m.evaluate(SUCCESS, 0, GROUPS, recorded("success"))
    # Latest minute only (10:05): 1180 + 420 requests, 3 target 5xx + 1 connection error.
    assert result.ok is True and round(result.value, 3) == round(100 * (1 - 4 / 1600), 3)


def test_resets_timeouts_and_alb_generated_errors_count_as_failures():
    burst = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("burst"))
    assert burst.ok is False and burst.value == 88.0 and "below the minimum 99" in burst.message
    resets = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("resets"))  # no 5xx at all, only connection errors
    assert resets.ok is False and resets.value == 97.0


def test_silence_holds():
    silent = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("silent"))
    assert silent.ok is None and silent.value is None and "no requests" in silent.message
    burst = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("burst"))
    assert m.verdict([burst, silent])[0] is False
    assert m.verdict([silent, m.evaluate(SUCCESS, 0, GROUPS, recorded("success"))])[0] is None


def test_duration_is_the_worst_groups_latest_p99_in_milliseconds():
    queries = m.queries(DURATION, 1, GROUPS, LISTENER)
    assert {q["MetricStat"]["Stat"] for q in queries} == {"p99"}
    result = m.evaluate(DURATION, 1, GROUPS, recorded("duration"))
    assert result.ok is False and result.value == 512.0


def test_metric_math_expressions_refer_to_the_prefixed_ids():
    queries = m.queries(CUSTOM, 2, GROUPS, LISTENER)
    assert [q["Id"] for q in queries] == [
        "m2g0_rate",
        "m2g0_errors",
        "m2g0_requests",
        "m2g1_rate",
        "m2g1_errors",
        "m2g1_requests",
    ]
    assert queries[0]["Expression"] == "100*m2g0_errors/m2g0_requests"
    assert queries[3]["Expression"] == "100*m2g1_errors/m2g1_requests"
    ids = {q["Id"] for q in queries}  # every identifier an expression uses is a query of the same call
    for q in queries:
        if "Expression" in q:
            assert set(__import__("re").findall(r"[a-z][A-Za-z0-9_]*", q["Expression"])) <= ids
    assert queries[4]["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == "targetgroup/web-c2/83e2d6bc24d8a067"
    result = m.evaluate(CUSTOM, 2, GROUPS, recorded("custom"))
    assert result.value == 2.5 and result.ok is False  # most recent value of the worse group
    assert CUSTOM.query[0] == {"Id": "rate", "Expression": "100*errors/requests"}  # the spec is not mutated


def test_relative_mode_judges_the_canary_against_the_primary():
    both_2pct = recorded("relative")
    absolute = m.evaluate(SUCCESS, 0, GROUPS[:1], both_2pct)
    assert absolute.ok is False and absolute.value == 98.0
    relative = m.MetricCheck("request-success-rate", 60, relative=m.Relative(max_delta=0.5))
    queries = m.queries(relative, 0, PRIMARY, LISTENER, side="p")
    assert queries[0]["Id"] == "m0pg0_req" and "web-p" in queries[0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
    same = m.evaluate(relative, 0, GROUPS[:1], both_2pct, PRIMARY)
    assert same.ok is True and same.value == 98.0 and same.primary == 98.0
    worse = m.evaluate(relative, 0, GROUPS[:1], recorded("relative_worse"), PRIMARY)
    assert worse.ok is False and "1.50 worse, more than 0.5" in worse.message
    assert worse.to_status(relative)["primary"] == 98.0 and worse.to_status(relative)["relative"] == {"maxDelta": 0.5}
    latency = m.MetricCheck("request-duration", 60, relative=m.Relative(max_ratio=1.2))
    slow = m.evaluate(latency, 1, GROUPS[:1], recorded("latency_relative"), PRIMARY)
    assert slow.ok is False and slow.value == 300.0 and slow.primary == 200.0 and "1.50x" in slow.message
    assert m.evaluate(relative, 0, GROUPS[:1], recorded("silent"), PRIMARY).ok is None


def test_alarms_are_gates():
    results = m.alarm_results(
        {"web-5xx": "ALARM", "web-latency": "OK", "web-new": "INSUFFICIENT_DATA"},
        ["web-5xx", "web-latency", "web-new", "gone"],
    )
    assert [r.ok for r in results] == [False, True, None, None]
    assert results[0].message == "alarm web-5xx is ALARM" and results[3].message == "alarm gone does not exist"
    assert m.verdict(results)[0] is False
