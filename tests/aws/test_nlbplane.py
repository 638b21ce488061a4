"""The dev data plane's faithfulness to NLB: real TCP connections through moto's NLB listeners, to pods
that answer. As in test_dataplane.py, the routing tests run with the nodes' delays off, and groups use the
tests' short health check (a TCP check every 5 s)."""

from __future__ import annotations

import datetime as dt
import http.client
import socket

import pytest

from awsctl.dev import propagation
from awsctl.dev.dataplane import PERIOD, DataPlane
from awsctl.dev.pods import LocalPods
from tests.aws.test_dataplane import HEALTHY_WITHIN, serve, states, within_sampling_error
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.aws


@pytest.fixture
def ground(moto):
    pods = LocalPods()
    plane = DataPlane(moto.realism, pods.resolve, seed=20261207, propagation=propagation.SETTINGS["off"]).start()
    try:
        yield moto, pods, plane
    finally:
        plane.stop()
        pods.close()


def nlb(moto, name: str) -> str:
    elbv2, ec2 = moto.client("elbv2"), moto.client("ec2")
    vpc = moto.default_vpc()["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    made = elbv2.create_load_balancer(Name=name, Subnets=subnets[:2], Type="network", Scheme="internal")
    return made["LoadBalancers"][0]["LoadBalancerArn"]


def forward(weights: dict[str, int]) -> list[dict]:
    groups = [{"TargetGroupArn": arn, "Weight": n} for arn, n in weights.items()]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


def wait_address(plane: DataPlane, listener: str) -> tuple[str, int]:
    return wait_for(lambda: plane.network.addresses().get(listener), timeout=10, what="the NLB listener's port")


def version(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/")
    answer = conn.getresponse()
    answer.read()
    return str(answer.getheader("X-Dev-Version"))


def test_each_new_connection_follows_the_weights_and_an_open_one_stays_where_it_is(ground):
    moto, pods, plane = ground
    elbv2 = moto.client("elbv2")
    stable, canary = moto.tcp_group("nlb-stable"), moto.tcp_group("nlb-canary")
    lb = nlb(moto, "plane-nlb")
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="TCP", Port=80, DefaultActions=forward({stable: 750, canary: 250})
    )["Listeners"][0]["ListenerArn"]
    serve(moto, pods, stable, "v1", ["172.31.0.10", "172.31.0.11"])
    serve(moto, pods, canary, "v2", ["172.31.16.20"])
    host, port = wait_address(plane, listener)
    healthy = lambda: all(s == "healthy" for g in (stable, canary) for s, _ in states(moto, g).values())  # noqa: E731
    wait_for(healthy, timeout=HEALTHY_WITHIN, what="every target healthy by TCP checks")

    seen = []
    for _ in range(400):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        seen.append(version(conn))
        conn.close()
    assert set(seen) == {"v1", "v2"}
    assert within_sampling_error(seen.count("v2"), len(seen), 250), seen.count("v2")

    # An open connection keeps its target through a weight change; new ones follow the new weights.
    held = http.client.HTTPConnection(host, port, timeout=10)
    first = version(held)
    moved = {stable: 0, canary: 999} if first == "v1" else {stable: 999, canary: 0}
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward(moved))
    assert [version(held) for _ in range(20)] == [first] * 20
    fresh = []
    for _ in range(20):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        fresh.append(version(conn))
        conn.close()
    assert set(fresh) == {"v2" if first == "v1" else "v1"}
    held.close()

    def closed():
        done = [f for f in plane.network.flows if f.closed]
        return done if len(done) == 421 else None

    flows = wait_for(closed, timeout=10, what="every flow closed")
    assert all(f.error is None and f.pod for f in flows), [f for f in flows if f.error or not f.pod][:3]
    last = max(f.time for f in flows) // PERIOD * PERIOD + PERIOD
    plane.publish_closed(last + plane.propagation.metrics_lag_seconds + 1)
    cloudwatch = moto.client("cloudwatch")
    lb_dim = {"Name": "LoadBalancer", "Value": "/".join(listener.split(":", 5)[-1].split("/")[1:4])}
    assert lb_dim["Value"].startswith("net/plane-nlb/")

    def total(name: str, *dims: dict) -> float:
        now = dt.datetime.now(dt.UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/NetworkELB",
            MetricName=name,
            Dimensions=list(dims),
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
            Period=PERIOD,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(p["Sum"] for p in points)

    canary_dim = {"Name": "TargetGroup", "Value": canary.split(":", 5)[-1]}
    assert total("NewFlowCount", lb_dim) == 421
    assert total("NewFlowCount", canary_dim, lb_dim) == sum(f.group == canary for f in flows)
    assert total("ProcessedBytes", lb_dim) == sum(f.sent + f.received for f in flows)
    assert total("RequestCount", lb_dim) == 0  # no ALB metric for an NLB
    assert total("HealthyHostCount", canary_dim, lb_dim) >= 1  # the last whole minute's, its one target


def test_a_group_with_nothing_to_route_to_gets_the_connection_reset(ground):
    moto, pods, plane = ground
    elbv2 = moto.client("elbv2")
    empty, dead = moto.tcp_group("nlb-empty"), moto.tcp_group("nlb-dead")
    lb = nlb(moto, "reset-nlb")
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=80, DefaultActions=forward({empty: 1}))[
        "Listeners"
    ][0]["ListenerArn"]
    # A target no pod answers for fails its TCP checks (no connection), and is unhealthy.
    elbv2.register_targets(TargetGroupArn=dead, Targets=[{"Id": "172.31.0.99", "Port": 8080}])
    host, port = wait_address(plane, listener)

    def refused() -> bool:
        """The connection is reset (at connect, on send or on receive) or closed with nothing sent back."""
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                return sock.recv(1024) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    assert all(refused() for _ in range(3))  # no target: reset by the load balancer
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward({empty: 1, dead: 1}))
    wait_for(lambda: states(moto, dead)["172.31.0.99"] == ("unhealthy", "Target.FailedHealthChecks"), timeout=30)
    flows = plane.network.flows
    assert [f.error for f in flows[:3]] == ["reset by the load balancer: no targets"] * 3
