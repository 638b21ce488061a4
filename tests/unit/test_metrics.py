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
    assert [q["Id"] for q in queries][:4] == ["m0g0_req", "m0g0_ok0", "m0g0_ok1", "m0g0_ok2"]
    # Only what AWS publishes per target group: HTTPCode_ELB_* have no TargetGroup dimension (asked for per
    # group, they would silently count nothing).
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in queries} == {
        "RequestCount",
        "HTTPCode_Target_2XX_Count",
        "HTTPCode_Target_3XX_Count",
        "HTTPCode_Target_4XX_Count",
    }
    dims = queries[0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims == [
        {"Name": "TargetGroup", "Value": "targetgroup/web-c/73e2d6bc24d8a067"},
        {"Name": "LoadBalancer", "Value": "app/demo/50dc6c495c0c9188"},
    ]
    result = m.evaluate(SUCCESS, 0, GROUPS, recorded("success"))
    # Latest minute only (10:05): 1180 + 420 requests, 3 target 5xx + 1 connection error.
    assert result.ok is True and round(result.value, 3) == round(100 * (1 - 4 / 1600), 3)


def test_target_5xx_and_connection_errors_count_as_failures():
    burst = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("burst"))
    assert burst.ok is False and burst.value == 90.0 and "below the minimum 99" in burst.message
    resets = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("resets"))  # no 5xx at all, only connection errors
    assert resets.ok is False and resets.value == 97.0


def test_what_the_load_balancer_answered_itself_after_choosing_a_target_counts_as_failed():
    """A canary that hangs: ALB answers 100 of its 1000 requests with its own 504, which it publishes per load
    balancer only; the group shows 1000 requests and 900 target 2XX, no target 5XX, no connection error."""
    hung = m.evaluate(SUCCESS, 0, GROUPS[:1], recorded("alb_errors"))
    assert hung.ok is False and hung.value == 90.0


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


def test_periods_from_before_the_current_weight_never_count():
    """Target groups are reused across revisions: v2's last minute must not judge v3, for or against.
    Only periods that start at or after the moment v3's weight was verified (the anchor) count."""
    import datetime

    def at(minute, second=0):
        return datetime.datetime(2026, 12, 3, 5, minute, second, tzinfo=datetime.UTC)

    stamp = lambda minute: str(at(minute))  # noqa: E731 - as botocore's datetimes print
    v2_bad = {"m0g0_req": [(stamp(1), 100.0)], "m0g0_ok0": [(stamp(1), 60.0)]}
    anchor = at(1, 30).timestamp()  # v3's weight verified half-way through minute 1
    assert m.evaluate(SUCCESS, 0, GROUPS[:1], v2_bad).ok is False  # without the anchor: a false fail
    assert m.evaluate(SUCCESS, 0, GROUPS[:1], v2_bad, anchor=anchor).ok is None  # v3 has no evidence yet
    v2_good = {"m0g0_req": [(stamp(1), 100.0)], "m0g0_ok0": [(stamp(1), 100.0)]}
    assert m.evaluate(SUCCESS, 0, GROUPS[:1], v2_good).ok is True  # without the anchor: a false pass
    assert m.evaluate(SUCCESS, 0, GROUPS[:1], v2_good, anchor=anchor).ok is None
    v3 = {"m0g0_req": [(stamp(2), 100.0), (stamp(1), 100.0)], "m0g0_ok0": [(stamp(2), 100.0), (stamp(1), 60.0)]}
    assert m.evaluate(SUCCESS, 0, GROUPS[:1], v3, anchor=anchor).value == 100.0  # minute 2 is v3's own
    # No data because of the anchor alone is told apart from silence (the runner holds it as "not yet").
    cut = m.evaluate(SUCCESS, 0, GROUPS[:1], v2_bad, anchor=anchor)
    assert cut.cut and "no period since 05:01:30 UTC is published yet" in cut.message
    assert not m.evaluate(SUCCESS, 0, GROUPS[:1], {}, anchor=anchor).cut  # nothing at all: plain silence
    assert not m.evaluate(SUCCESS, 0, GROUPS[:1], v3, anchor=anchor).cut
    # The first period wholly after the anchor starts within a period, closes a period later, and takes
    # up to two more to be published.
    assert m.pending_window(SUCCESS) == 240.0


def test_relative_mode_compares_both_sides_on_the_same_period():
    import datetime

    stamp = lambda minute: str(datetime.datetime(2026, 12, 3, 5, minute, tzinfo=datetime.UTC))  # noqa: E731
    relative = m.MetricCheck("request-success-rate", 60, relative=m.Relative(max_delta=0.5))
    # The canary's minute 3 is published, the primary's is not yet: minute 2 is compared for both.
    series = {
        "m0g0_req": [(stamp(3), 100.0), (stamp(2), 100.0)],
        "m0g0_ok0": [(stamp(3), 90.0), (stamp(2), 100.0)],
        "m0pg0_req": [(stamp(2), 100.0)],
        "m0pg0_ok0": [(stamp(2), 100.0)],
    }
    result = m.evaluate(relative, 0, GROUPS[:1], series, PRIMARY)
    assert result.ok is True and result.value == 100.0 and result.primary == 100.0


def test_a_denied_cloudwatch_call_is_a_condition_naming_the_action_never_no_data():
    """The shipped role once lacked cloudwatch:DescribeAlarms: every Canary with alarms "had no data" and
    rolled back. A denial is now a refusal (condition, event, log) that names the action to add."""
    import pytest
    from botocore.exceptions import ClientError

    from awsctl.api import canary
    from awsctl.controllers.analysis_runner import AnalysisRunner
    from awsctl.controllers.errors import NotReady

    class Denying:
        def alarm_states(self, refs):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DescribeAlarms")

        def metric_data(self, queries, lookback):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetMetricData")

    listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
    base = {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": listener}}
    runner = AnalysisRunner(Denying())  # type: ignore[arg-type]
    for analysis, field, action in (
        ({"alarms": [{"name": "web-5xx"}]}, "spec.analysis.alarms", "cloudwatch:DescribeAlarms"),
        (
            {"metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]},
            "spec.analysis.metrics[0]",
            "cloudwatch:GetMetricData",
        ),
    ):
        spec = canary.CanarySpec.parse({**base, "analysis": analysis})
        with pytest.raises(NotReady) as refused:
            runner.answer("analysis", spec, {}, ["arn:tg/c"], ["arn:tg/p"])
        assert refused.value.reason == "AccessDenied" and refused.value.field == field
        assert refused.value.message.startswith(f"{field}: the operator's IAM role may not call {action}")


def test_the_fewest_requests_a_success_rate_period_needs_to_be_judged():
    """With fewer, one failed request alone takes the rate below min: the step passes or fails by chance."""
    table = [
        (m.MetricCheck("request-success-rate", 60, min=99.0), 100),
        (m.MetricCheck("request-success-rate", 60, min=99.9), 1000),
        (m.MetricCheck("request-success-rate", 60, min=95.0), 20),
        (m.MetricCheck("request-success-rate", 60, min=90.0), 10),
        (m.MetricCheck("request-success-rate", 60, min=0.0), 1),
        (m.MetricCheck("request-success-rate", 60, min=100.0), None),  # any failure fails, by design
        (m.MetricCheck("request-success-rate", 60, max=50.0), None),
        (DURATION, None),
        (CUSTOM, None),
    ]
    for check, fewest in table:
        assert m.fewest_requests(check) == fewest, check


def _period(requests: float, ok: float) -> dict:
    stamp = "2026-12-07T10:05:00Z"
    return {"m0g0_req": [(stamp, requests)], "m0g0_ok0": [(stamp, ok)]} if requests else {}


def test_a_period_too_thin_to_judge_says_so_whatever_its_verdict():
    table = [
        # (requests, answered, verdict, thin)
        (37, 37, True, "37 requests in the period of 2026-12-07T10:05:00Z, fewer than the 100"),
        (37, 36, False, "37 requests"),  # one unlucky request failed a step at 99%
        (99, 99, True, "99 requests"),
        (100, 100, True, ""),
        (1600, 1596, True, ""),
        (0, 0, None, ""),  # no period at all: no data, held and counted, never "thin"
    ]
    for requests, ok, verdict, thin in table:
        result = m.evaluate(SUCCESS, 0, GROUPS[:1], _period(requests, ok))
        assert result.ok is verdict, (requests, ok)
        assert (thin in result.thin) if thin else result.thin == "", (requests, result.thin)
        if thin:
            assert "keeps the rate above its min 99" in result.thin
    assert m.evaluate(DURATION, 0, GROUPS[:1], recorded("success")).thin == ""


def test_the_analysis_answer_carries_the_thin_periods():
    from awsctl.api import canary
    from awsctl.controllers.analysis_runner import AnalysisRunner

    class Thin:
        def metric_data(self, queries, lookback):
            return {qid: points for qid, points in _period(12, 12).items()}

    spec = canary.CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": LISTENER},
            "analysis": {"metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]},
        }
    )
    answer = AnalysisRunner(Thin()).answer("analysis", spec, {}, GROUPS[:1], PRIMARY)  # type: ignore[arg-type]
    assert answer.ok is True and answer.thin.startswith("request-success-rate: 12 requests")


def test_connection_success_rate_reads_nlb_flows_and_target_resets_of_every_group():
    listener = LISTENER.replace("listener/app/", "listener/net/")
    check = m.MetricCheck("connection-success-rate", 60, min=99.0)
    queries = m.queries(check, 0, GROUPS, listener)
    assert {q["MetricStat"]["Metric"]["Namespace"] for q in queries} == {"AWS/NetworkELB"}
    assert [q["MetricStat"]["Metric"]["MetricName"] for q in queries[:2]] == ["NewFlowCount", "TCP_Target_Reset_Count"]
    assert queries[0]["MetricStat"]["Metric"]["Dimensions"][1] == {
        "Name": "LoadBalancer",
        "Value": "net/demo/50dc6c495c0c9188",
    }
    latest, older = "2026-12-07T10:05:00+00:00", "2026-12-07T10:04:00+00:00"
    results = {
        "m0g0_req": [(latest, 600.0), (older, 10.0)],
        "m0g0_rst": [(latest, 6.0), (older, 10.0)],  # the older minute's resets never count
        "m0g1_req": [(latest, 400.0)],  # no reset published: none happened
    }
    value, why = m.value_of(check, 0, GROUPS, results)
    assert value == 100.0 * 994 / 1000 and not why
    assert (
        m.judge(check, value, "").ok is True and m.value_of(check, 0, GROUPS, {"m0g0_rst": [(latest, 1.0)]})[0] is None
    )
