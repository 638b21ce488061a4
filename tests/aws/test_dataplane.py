"""The dev data plane's faithfulness to ALB: real requests through moto's listeners, to pods that answer.

Each test starts a data plane on the moto server's realism layer (so health comes from real probes
while it runs) and pods served from this process. Groups use the tests' short health check:
every 5 s, a new target healthy after its first pass, unhealthy after 2 failures.

The tests of one routing mechanism each (weights, fail-open, draining, stickiness, actions) run with the
nodes' delays off, so that each assertion is about that mechanism alone; the delays have tests of their
own here (`test_nodes_*`), with the default setting, and every e2e story runs under the defaults.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from awsctl.dev import propagation
from awsctl.dev.dataplane import PERIOD, DataPlane
from awsctl.dev.load import Load
from awsctl.dev.pods import LocalPods, pod
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.aws

HEALTHY_WITHIN = 10 + 3  # registration (1 s with the delays off), a 5 s check, a second one, and scheduling
DEFAULTS = {"propagation": propagation.DEFAULT}


@pytest.fixture
def ground(moto, request):
    pods = LocalPods()
    options = {"seed": 20261203, "propagation": propagation.SETTINGS["off"], **getattr(request, "param", {})}
    plane = DataPlane(moto.realism, pods.resolve, **options).start()
    try:
        yield moto, pods, plane
    finally:
        plane.stop()
        pods.close()


def get(url: str, *, cookie: str | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def forward(elbv2, listener: str, weights: dict[str, int], sticky: int | None = None) -> None:
    config: dict = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()]}
    if sticky:
        config["TargetGroupStickinessConfig"] = {"Enabled": True, "DurationSeconds": sticky}
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": config}])


def serve(moto, pods, group: str, name: str, ips: list[str], **behaviour) -> None:
    """Pods that answer on 8080 at `ips`, registered in `group`."""
    env = {k: v for k, v in behaviour.items() if k.startswith("DEV_")}
    for index, ip in enumerate(ips):
        pods.observe("ADDED", pod(f"{name}-{index}", ip, image=f"demo/web:{name}", env=env))
    moto.client("elbv2").register_targets(TargetGroupArn=group, Targets=[{"Id": ip, "Port": 8080} for ip in ips])


def states(moto, group: str) -> dict[str, tuple[str, str | None]]:
    health = moto.client("elbv2").describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: (d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")) for d in health}


def all_healthy(moto, *groups: str) -> bool:
    return all(s == "healthy" for g in groups for s, _ in states(moto, g).values())


def within_sampling_error(hits: int, total: int, weight: int) -> bool:
    p = weight / 1000
    return abs(hits / total - p) <= 4.5 * (p * (1 - p) / total) ** 0.5


def test_weights_are_honoured_within_sampling_error(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    stable, canary = moto.target_group("stable", port=8080), moto.target_group("canary", port=8080)
    forward(moto.client("elbv2"), listener, {stable: 995, canary: 5})
    serve(moto, pods, stable, "v1", ["172.31.0.10", "172.31.0.11"])
    serve(moto, pods, canary, "v2", ["172.31.16.20"])
    url = plane.wait_listener(listener)
    wait_for(lambda: all_healthy(moto, stable, canary), timeout=HEALTHY_WITHIN, what="every target healthy")

    for weights in ({stable: 995, canary: 5}, {stable: 750, canary: 250}):
        forward(moto.client("elbv2"), listener, weights)
        start = len(plane.records)
        summary = Load(url, 800).start(5).wait()
        assert summary.failures == 0, summary.line()
        records = plane.records[start:]
        assert len(records) == summary.requests == 4000
        assert all(r.version == ("v1" if r.group == stable else "v2") for r in records)
        canary_hits = sum(r.group == canary for r in records)
        assert within_sampling_error(canary_hits, len(records), weights[canary]), (canary_hits, weights)
        # round robin: the stable group's two targets take turns
        per_target = Counter(r.target for r in records if r.group == stable)
        assert max(per_target.values()) - min(per_target.values()) <= 1, per_target


def test_health_comes_from_real_probes_and_an_all_unhealthy_group_fails_open(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    mixed = moto.target_group("mixed", port=8080, listener=listener, priority=1)
    failing = moto.target_group("failing", port=8080, listener=listener, priority=2)
    serve(moto, pods, mixed, "ok", ["172.31.0.10"])
    serve(moto, pods, mixed, "sick", ["172.31.0.11"], DEV_HEALTH_STATUS="503")
    moto.client("elbv2").register_targets(TargetGroupArn=mixed, Targets=[{"Id": "172.31.0.12", "Port": 8080}])
    serve(moto, pods, failing, "failing", ["172.31.16.10"], DEV_HEALTH_STATUS="500")
    assert {s for s, _ in states(moto, mixed).values()} == {"initial"}  # before the first check has run
    url = plane.wait_listener(listener)
    assert get(f"{url}/mixed/x")[0] == 503  # initial targets get no request: no fail-open to them

    def settled():
        return states(moto, mixed) == {
            "172.31.0.10": ("healthy", None),
            "172.31.0.11": ("unhealthy", "Target.ResponseCodeMismatch"),
            "172.31.0.12": ("unhealthy", "Target.FailedHealthChecks"),  # no pod answers there
        } and states(moto, failing) == {"172.31.16.10": ("unhealthy", "Target.ResponseCodeMismatch")}

    wait_for(settled, timeout=HEALTHY_WITHIN, what="states from the probes")
    answers = Counter(get(f"{url}/mixed/x")[1].get("X-Dev-Pod") for _ in range(20))
    assert answers == {"default/ok-0": 20}  # only the healthy target gets requests
    failing_answers = [get(f"{url}/failing/x") for _ in range(5)]
    assert [status for status, _, _ in failing_answers] == [200] * 5  # fail-open: the unhealthy target serves

    pods.observe("DELETED", pod("ok-0", "172.31.0.10"))  # the healthy pod goes; its port refuses
    wait_for(
        lambda: states(moto, mixed)["172.31.0.10"] == ("unhealthy", "Target.FailedHealthChecks"),
        timeout=HEALTHY_WITHIN,
        what="the stopped pod unhealthy after 2 failed checks",
    )


def test_the_load_balancer_answers_503_502_and_504_itself(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    elbv2 = moto.client("elbv2")
    lb = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb, Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "1"}]
    )
    moto.target_group("empty", port=8080, listener=listener, priority=1)
    gone = moto.target_group("gone", port=8080, listener=listener, priority=2)
    slow = moto.target_group("slow", port=8080, listener=listener, priority=3)
    elbv2.register_targets(TargetGroupArn=gone, Targets=[{"Id": "172.31.0.40", "Port": 8080}])
    serve(moto, pods, slow, "slow", ["172.31.0.41"], DEV_LATENCY_MS="2500")
    url = plane.wait_listener(listener)
    wait_for(  # until then `gone` has an initial target only, and answers 503 too
        lambda: states(moto, gone)["172.31.0.40"][0] == "unhealthy" and all_healthy(moto, slow),
        timeout=HEALTHY_WITHIN,
        what="gone failed open, slow healthy",
    )

    assert get(f"{url}/empty/x")[0] == 503  # a group with no targets
    assert get(f"{url}/gone/x")[0] == 502  # the target refuses the connection
    assert get(f"{url}/slow/x")[0] == 504  # no answer within the idle timeout
    assert get(f"{url}/nowhere")[0] == 404  # the listener's default action: a fixed response
    errors = [(r.status, r.error) for r in plane.records]
    assert errors == [(503, "no targets"), (502, "connection refused"), (504, "target timeout"), (404, None)]


def test_a_draining_target_finishes_what_it_has_and_gets_nothing_new(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    group = moto.target_group("drain", port=8080)
    forward(moto.client("elbv2"), listener, {group: 1})
    serve(moto, pods, group, "slow", ["172.31.0.50"], DEV_LATENCY_MS="1500")
    serve(moto, pods, group, "fast", ["172.31.0.51"])
    url = plane.wait_listener(listener)
    wait_for(lambda: all_healthy(moto, group), timeout=HEALTHY_WITHIN, what="both targets healthy")

    with ThreadPoolExecutor(2) as pool:
        in_flight = [pool.submit(get, url) for _ in range(2)]  # round robin: one of them goes to the slow pod
        time.sleep(0.5)
        moto.client("elbv2").deregister_targets(TargetGroupArn=group, Targets=[{"Id": "172.31.0.50", "Port": 8080}])
        assert states(moto, group)["172.31.0.50"][0] == "draining"
        after = [get(url) for _ in range(10)]
        finished = [f.result() for f in in_flight]
    assert sorted(a[1]["X-Dev-Pod"] for a in finished) == ["default/fast-0", "default/slow-0"]
    assert all(status == 200 for status, _, _ in finished)
    assert {a[1]["X-Dev-Pod"] for a in after} == {"default/fast-0"}


def test_group_stickiness_keeps_a_client_on_its_group(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    blue, green = moto.target_group("blue", port=8080), moto.target_group("green", port=8080)
    forward(moto.client("elbv2"), listener, {blue: 500, green: 500}, sticky=300)
    serve(moto, pods, blue, "blue", ["172.31.0.60"])
    serve(moto, pods, green, "green", ["172.31.16.60"])
    url = plane.wait_listener(listener)
    wait_for(lambda: all_healthy(moto, blue, green), timeout=HEALTHY_WITHIN, what="both healthy")

    status, headers, _ = get(url)
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert cookie.startswith("AWSALBTG=")
    first = headers["X-Dev-Version"]
    assert {get(url, cookie=cookie)[1]["X-Dev-Version"] for _ in range(30)} == {first}
    assert {get(url)[1]["X-Dev-Version"] for _ in range(30)} == {"blue", "green"}  # no cookie: both
    # the client stays with its group at weight 0 while the group is still in the forward
    forward(moto.client("elbv2"), listener, {blue: 0, green: 999} if first == "blue" else {blue: 999, green: 0}, 300)
    assert get(url, cookie=cookie)[1]["X-Dev-Version"] == first


def test_fixed_responses_redirects_and_authentication(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    elbv2 = moto.client("elbv2")
    app = moto.target_group("app", port=8080)
    serve(moto, pods, app, "app", ["172.31.0.70"])
    elbv2.create_rule(
        ListenerArn=listener,
        Priority=1,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old/*"]}}],
        Actions=[{"Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"}}],
    )
    oidc = {
        "Issuer": "https://idp.example.com",
        "AuthorizationEndpoint": "https://idp.example.com/authorize",
        "TokenEndpoint": "https://idp.example.com/token",
        "UserInfoEndpoint": "https://idp.example.com/userinfo",
        "ClientId": "client",
        "ClientSecret": "secret",
    }
    for priority, path, unauthenticated in ((2, "/login/*", "authenticate"), (3, "/api/*", "deny")):
        elbv2.create_rule(
            ListenerArn=listener,
            Priority=priority,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}],
            Actions=[
                {
                    "Type": "authenticate-oidc",
                    "Order": 1,
                    "AuthenticateOidcConfig": {**oidc, "OnUnauthenticatedRequest": unauthenticated},
                },
                {"Type": "forward", "Order": 2, "TargetGroupArn": app},
            ],
        )
    url = plane.wait_listener(listener)
    opener = urllib.request.build_opener(NoRedirect)

    def raw(path: str, cookie: str | None = None) -> tuple[int, str | None]:
        try:
            answer = opener.open(urllib.request.Request(f"{url}{path}", headers={"Cookie": cookie} if cookie else {}))
            return answer.status, answer.headers.get("X-Dev-Pod")
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Location")

    assert raw("/nowhere") == (404, None)
    assert raw("/old/page?q=1") == (301, f"{url}/new/old/page?q=1")
    assert raw("/login/x") == (302, "https://idp.example.com/authorize")
    assert raw("/api/x") == (401, None)
    assert raw("/api/x", cookie="AWSELBAuthSessionCookie-0=abc")[0] == 401  # a cookie of another name
    wait_for(lambda: all_healthy(moto, app), timeout=HEALTHY_WITHIN, what="the app healthy")
    assert raw("/api/x", cookie="AWSELBAuthSessionCookie=abc") == (200, "default/app-0")


@pytest.mark.parametrize("ground", [{"publish_metrics": False, **DEFAULTS}], indirect=True)  # the test says when
def test_cloudwatch_metrics_follow_albs_definitions_and_arrive_late(ground):
    moto, pods, plane = ground
    listener = moto.listener()
    faulty = moto.target_group("faulty", port=8080, listener=listener, priority=1)
    empty = moto.target_group("nothing", port=8080, listener=listener, priority=2)
    refusing = moto.target_group("refusing", port=8080, listener=listener, priority=3)
    moto.client("elbv2").create_rule(
        ListenerArn=listener,
        Priority=4,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/moved/*"]}}],
        Actions=[{"Type": "redirect", "RedirectConfig": {"Path": "/new", "StatusCode": "HTTP_301"}}],
    )
    serve(moto, pods, faulty, "v3", ["172.31.0.80", "172.31.0.81"], DEV_ERROR_RATE="0.3")
    moto.client("elbv2").register_targets(TargetGroupArn=refusing, Targets=[{"Id": "172.31.0.82", "Port": 8080}])
    url = plane.wait_listener(listener)
    registration = plane.propagation.target_seconds[1]
    wait_for(
        lambda: all_healthy(moto, faulty) and states(moto, refusing)["172.31.0.82"][0] == "unhealthy",
        timeout=registration + HEALTHY_WITHIN + 5,
        what="faulty healthy, refusing failed open",
    )
    time.sleep(plane.propagation.rule_seconds[1])  # every node has every rule
    opener = urllib.request.build_opener(NoRedirect)
    for _ in range(60):
        get(f"{url}/faulty/x")
    for _ in range(5):
        get(f"{url}/nothing/x")  # 503: no target to choose
    for _ in range(4):
        get(f"{url}/refusing/x")  # a target chosen, the connection refused: 502
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError):
            opener.open(f"{url}/moved/x")
    records = list(plane.records)
    errors = sum(r.status == 500 for r in records)
    assert 0 < errors < 60
    assert all(r.target_time is not None and r.target_time <= r.latency for r in records if r.version)

    last_period_end = max(r.time for r in records) // PERIOD * PERIOD + PERIOD
    plane.publish_closed(last_period_end + 2)  # a second after the minute: ALB has not published it yet
    cloudwatch = moto.client("cloudwatch")
    lb = "/".join(listener.split(":", 5)[-1].split("/")[1:4])
    group_dims = [{"Name": "TargetGroup", "Value": faulty.split(":", 5)[-1]}, {"Name": "LoadBalancer", "Value": lb}]
    refusing_dims = [{"Name": "TargetGroup", "Value": refusing.split(":", 5)[-1]}, group_dims[1]]
    lb_dims = [{"Name": "LoadBalancer", "Value": lb}]

    def total(name: str, dims: list[dict], statistic: str = "Sum") -> float:
        now = dt.datetime.now(dt.UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName=name,
            Dimensions=dims,
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
            Period=PERIOD,
            Statistics=[statistic],
        )["Datapoints"]
        return sum(p[statistic] for p in points)

    assert total("RequestCount", lb_dims) == 0
    plane.publish_closed(last_period_end + plane.propagation.metrics_lag_seconds + 1)  # the lag has passed

    assert total("RequestCount", group_dims) == 60
    assert total("HTTPCode_Target_5XX_Count", group_dims) == errors
    assert total("HTTPCode_Target_2XX_Count", group_dims) == 60 - errors
    assert total("TargetResponseTime", group_dims, "SampleCount") == 60, [  # every request's value
        (r.status, r.error, r.target_time) for r in records if r.group == faulty
    ]
    assert total("RequestCount", refusing_dims) == 4  # a target was chosen
    assert total("TargetConnectionErrorCount", refusing_dims) == 4
    assert total("RequestCount", lb_dims) == 64  # not the 503s (no target chosen), not the redirects
    assert total("HTTPCode_ELB_503_Count", lb_dims) == 5  # per load balancer only
    assert total("HTTPCode_ELB_503_Count", [{"Name": "TargetGroup", "Value": empty.split(":", 5)[-1]}] + lb_dims) == 0
    assert total("HTTPCode_ELB_502_Count", lb_dims) == 4
    assert total("HTTPCode_ELB_5XX_Count", lb_dims) == 9
    assert total("HTTP_Redirect_Count", lb_dims) == 3
    assert {
        total("HealthyHostCount", group_dims, "Maximum") / total("HealthyHostCount", group_dims, "SampleCount")
    } == {2}  # a datapoint per whole minute, each with both targets


@pytest.mark.parametrize("ground", [DEFAULTS], indirect=True)
def test_nodes_apply_a_rule_change_late(ground):
    """AWS: "requests could be routed using the previous rule configuration for a short time"."""
    moto, pods, plane = ground
    listener = moto.listener()
    blue, green = moto.target_group("blue", port=8080), moto.target_group("green", port=8080)
    elbv2 = moto.client("elbv2")
    forward(elbv2, listener, {blue: 999, green: 0})
    serve(moto, pods, blue, "blue", ["172.31.0.60"])
    serve(moto, pods, green, "green", ["172.31.16.60"])
    url = plane.wait_listener(listener)
    slowest = plane.propagation.rule_seconds[1]
    wait_for(
        lambda: all_healthy(moto, blue, green),
        timeout=plane.propagation.target_seconds[1] + HEALTHY_WITHIN,
        what="both healthy",
    )
    time.sleep(slowest)
    forward(elbv2, listener, {green: 999})  # blue leaves the forward: the API shows its targets unused
    changed = time.monotonic()
    assert {state for state, _ in states(moto, blue).values()} == {"unused"}
    early = Counter(get(url)[1].get("X-Dev-Version") for _ in range(40))
    # the nodes that have not applied the change yet still send to blue, whose targets serve as they were
    assert early["blue"] > 0 and set(early) <= {"blue", "green"}, early
    time.sleep(max(0.0, slowest + 0.5 - (time.monotonic() - changed)))
    late = Counter(get(url)[1].get("X-Dev-Version") for _ in range(40))
    assert late == {"green": 40}, late


@pytest.mark.parametrize("ground", [DEFAULTS], indirect=True)
def test_nodes_send_new_requests_to_a_deregistered_target_until_they_apply_it_then_cut_what_is_in_flight(ground):
    """aws-load-balancer-controller#1064 and #2366: a deregistered target keeps getting new requests
    for a while; once a node has drained it for the deregistration delay, its requests in flight end."""
    moto, pods, plane = ground
    listener = moto.listener()
    group = moto.target_group("drain", port=8080)  # deregistration delay: 5 s
    slow = moto.target_group("slow", port=8080, listener=listener, priority=1)
    forward(moto.client("elbv2"), listener, {group: 1})
    serve(moto, pods, group, "stays", ["172.31.0.50"])
    serve(moto, pods, group, "goes", ["172.31.0.51"])
    serve(moto, pods, slow, "hangs", ["172.31.0.52"], DEV_LATENCY_MS="35000")  # past the cut; checks answer at once
    url = plane.wait_listener(listener)
    low, high = plane.propagation.target_seconds
    wait_for(lambda: all_healthy(moto, group, slow), timeout=high + HEALTHY_WITHIN, what="every target healthy")
    time.sleep(plane.propagation.rule_seconds[1])  # every node has every rule
    elbv2 = moto.client("elbv2")
    with ThreadPoolExecutor(3) as pool:
        hanging = [pool.submit(get, f"{url}/slow/x", timeout=high + 30) for _ in range(3)]
        time.sleep(0.5)
        elbv2.deregister_targets(TargetGroupArn=slow, Targets=[{"Id": "172.31.0.52", "Port": 8080}])
        elbv2.deregister_targets(TargetGroupArn=group, Targets=[{"Id": "172.31.0.51", "Port": 8080}])
        gone = time.monotonic()
        assert states(moto, group)["172.31.0.51"][0] == "draining"
        early = Counter(get(url)[1].get("X-Dev-Pod") for _ in range(30))
        assert early["default/goes-0"] > 0, early  # nodes that have not applied the deregistration
        time.sleep(max(0.0, high + 0.5 - (time.monotonic() - gone)))
        late = Counter(get(url)[1].get("X-Dev-Pod") for _ in range(30))
        assert late == {"default/stays-0": 30}, late
        cut = [f.result() for f in hanging]
    assert [status for status, _, _ in cut] == [502] * 3, cut  # cut at the end of the delay on their node
    cut_records = [r for r in plane.records if r.status == 502]
    assert {r.error for r in cut_records} == {"deregistration delay ended"}
    assert all(low + 5 <= r.latency <= high + 5 + 1 for r in cut_records), [r.latency for r in cut_records]
