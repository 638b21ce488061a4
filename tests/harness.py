"""The moto harness shared by the test tiers and the benchmarks.

The server runs in this process behind the ELBv2 realism layer (awsctl/dev/realism.py): targets go
through unused/initial/healthy/draining with the group's own timings, the API is rate-limited as
AWS documents, and moto's missing validation is added. Tests inject unhealthy targets and
throttling here, because the operator reaches the server over HTTP. Every Register/DeregisterTargets
call is recorded with its time, for ordering checks and latency figures. The harness's own reads
carry the observer header, so a test looking at AWS never spends the operator's API budget.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import boto3
from kubernetes import client
from moto.elbv2 import models as elbv2_models
from moto.server import ThreadedMotoServer

from awsctl.demo.alb import create_alb, create_nlb, record_requests
from awsctl.dev import realism as realism_layer
from awsctl.dev.cluster import free_port
from awsctl.routing.alb_wire import weights_of


@dataclass(frozen=True)
class Write:
    call: str
    group: str
    keys: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class WeightWrite:
    route: str  # rule ARN or listener ARN (default action)
    weights: dict
    at: float


@dataclass
class MotoServer:
    endpoint: str
    realism: realism_layer.Realism | None = None  # None only with AWSCTL_REALISM=off
    unhealthy: set[str] = field(default_factory=set)  # target ids (or id:port) that fail health checks
    writes: list[Write] = field(default_factory=list)
    weight_writes: list[WeightWrite] = field(default_factory=list)  # every ModifyRule/ModifyListener forward

    def weights_written(self, route: str) -> list[dict]:
        return [w.weights for w in list(self.weight_writes) if w.route == route]

    def writes_to(self, arn: str) -> list[tuple[str, tuple[str, ...]]]:
        return [(w.call, w.keys) for w in list(self.writes) if w.group == arn]

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def reset(self) -> None:
        if self.realism:
            self.realism.reset()
        self.unhealthy.clear()
        self.writes.clear()
        self.weight_writes.clear()
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def client(self, service: str):
        """A client for the test's own set-up and looks at AWS: exempt from the realism layer's budget."""
        made = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        made.meta.events.register("before-send.*.*", _as_observer)
        return made

    def default_vpc(self) -> dict:
        return self.client("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]

    def target_group(
        self, name: str, target_type: str = "ip", port: int = 80, listener: str | None = None, priority: int = 1
    ) -> str:
        """A group with the short health check the tests use (5 s x 2 = healthy 10 s after registration).

        With `listener`, a rule forwards to it, so AWS health-checks its targets; a group no rule
        uses keeps them `unused`, as on a real ALB."""
        elbv2 = self.client("elbv2")
        arn = elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=port,
            VpcId=self.default_vpc()["VpcId"],
            TargetType=target_type,
            HealthCheckIntervalSeconds=5,
            HealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]
        )
        if listener:
            elbv2.create_rule(
                ListenerArn=listener,
                Priority=priority,
                Actions=[{"Type": "forward", "TargetGroupArn": arn}],
                Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/{name}/*"]}}],
            )
        return arn

    def listener(self, name: str = "test-alb") -> str:
        return create_alb(self.client("elbv2"), self.client("ec2"), name)[1]

    def tcp_group(self, name: str, port: int = 8080) -> str:
        """An NLB's TCP group with the short TCP health check the tests use (5 s x 2)."""
        return self.client("elbv2").create_target_group(
            Name=name,
            Protocol="TCP",
            Port=port,
            VpcId=self.default_vpc()["VpcId"],
            TargetType="ip",
            HealthCheckProtocol="TCP",
            HealthCheckIntervalSeconds=5,
            HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]

    def nlb_listener(self, name: str = "test-nlb") -> tuple[str, str]:
        """(an NLB's TCP listener, the group of yours it forwards to, with no target)."""
        group = self.tcp_group(f"{name}-yours"[:32])
        return create_nlb(self.client("elbv2"), self.client("ec2"), name, group)[1], group

    def forward_weights(self, route_arn: str) -> dict[str, int]:
        """The weights AWS shows on a rule or a listener's default action."""
        elbv2 = self.client("elbv2")
        if ":listener/" in route_arn:
            actions = elbv2.describe_listeners(ListenerArns=[route_arn])["Listeners"][0]["DefaultActions"]
        else:
            actions = elbv2.describe_rules(RuleArns=[route_arn])["Rules"][0]["Actions"]
        return weights_of(actions)

    def awsctl_target_groups(self) -> list[str]:
        elbv2 = self.client("elbv2")
        arns = [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
        tagged = elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"] if arns else []
        return [
            d["ResourceArn"] for d in tagged if any(t["Key"] == "awsctl.io/managed-by" for t in d.get("Tags") or ())
        ]

    @contextlib.contextmanager
    def traffic(
        self, listener_arn: str, target_group_arn: str, requests: int = 100, errors: int = 0, every: float = 0.5
    ):
        """Seeds the ALB metrics CloudWatch would have for a group (RequestCount, 5XX) until the block ends.

        Yields a dict; change ["errors"] (or ["requests"]) to change what the next datapoints say."""
        load = {"requests": requests, "errors": errors}
        stop = threading.Event()
        cloudwatch = self.client("cloudwatch")

        def feed():
            while not stop.is_set():
                record_requests(cloudwatch, listener_arn, target_group_arn, load["requests"], load["errors"])
                stop.wait(every)

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        try:
            yield load
        finally:
            stop.set()
            thread.join(5)

    def targets(self, arn: str) -> set[tuple[str, int]]:
        """Registered targets (draining ones are on their way out, so they are not counted)."""
        return {t for t, state in self.target_states(arn).items() if state != "draining"}

    def target_states(self, arn: str) -> dict[tuple[str, int], str]:
        health = self.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        return {(d["Target"]["Id"], int(d["Target"]["Port"])): d["TargetHealth"]["State"] for d in health}

    def served(self, route_arn: str) -> dict[str, tuple[int, int]]:
        """Group ARN -> (weight, healthy targets) as the ALB would route now, read from the server's own
        state (no API call: sampling must not spend the operator's budget)."""
        backend = elbv2_models.elbv2_backends["123456789012"]["us-east-1"]
        for _ in range(5):
            try:
                if ":listener/" in route_arn:
                    listener = backend.describe_listeners(None, [route_arn])[0]
                    actions = listener.default_actions
                else:
                    actions = backend.describe_rules(listener_arn=None, rule_arns=[route_arn])[0].actions
                weights = weights_of([dict(a.data) for a in actions])
                out = {}
                for arn, weight in weights.items():
                    group = backend.target_groups[arn]
                    states = self.realism.describe(group, [], elbv2_models.FakeHealthStatus)
                    out[arn] = (int(weight), sum(1 for st in states if st.status == "healthy"))
                return out
            except RuntimeError:  # a server thread changed a dict under us: read again
                continue
        raise AssertionError(f"could not sample {route_arn}")

    def throttle(self, count: int, *actions: str) -> None:
        """The operator's next `count` calls (of `actions`, or any) are refused with Throttling."""
        assert self.realism, "throttling needs the realism layer"
        self.realism.inject_throttling(count, actions)


def _as_observer(request, **_) -> None:
    request.headers[realism_layer.OBSERVER_HEADER] = "1"


@contextlib.contextmanager
def moto_server():
    """A moto server on a free 127.0.0.1 port, patched for health injection and write recording."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call otherwise
    port = free_port()
    layer = realism_layer.install_once()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    moto = MotoServer(f"http://127.0.0.1:{port}", realism=layer)
    if layer:
        moto.unhealthy = layer.unhealthy
    original_health = elbv2_models.FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):  # only used with the realism layer off
        status = original_health(self, target, ec2_backend)
        if status.status == "healthy" and status.instance_id in moto.unhealthy:
            return elbv2_models.FakeHealthStatus(
                status.instance_id,
                status.port,
                status.health_check_port,
                "unhealthy",
                "Target.FailedHealthChecks",
                "injected by the test",
            )
        return status

    originals = {call: getattr(elbv2_models.ELBv2Backend, call) for call in ("register_targets", "deregister_targets")}

    def recording(call):
        def recorded(self, target_group_arn, instances, *args, **kwargs):
            keys = tuple(sorted(f"{t['Id']}:{t.get('Port')}" for t in instances))
            result = originals[call](self, target_group_arn, instances, *args, **kwargs)
            moto.writes.append(Write(call, target_group_arn, keys, time.monotonic()))
            return result

        return recorded

    route_calls = {call: getattr(elbv2_models.ELBv2Backend, call) for call in ("modify_rule", "modify_listener")}

    def recording_weights(call):
        def recorded(self, *args, **kwargs):
            result = route_calls[call](self, *args, **kwargs)
            arn = args[0] if args else kwargs.get("rule_arn") or kwargs.get("arn")
            actions = result.actions if call == "modify_rule" else result.default_actions
            weights = weights_of([{k: v for k, v in a.data.items()} for a in actions])
            if weights:
                moto.weight_writes.append(WeightWrite(arn, {k: int(v) for k, v in weights.items()}, time.monotonic()))
            return result

        return recorded

    elbv2_models.FakeTargetGroup.health_for = health_for
    for call in originals:
        setattr(elbv2_models.ELBv2Backend, call, recording(call))
    for call in route_calls:
        setattr(elbv2_models.ELBv2Backend, call, recording_weights(call))
    try:
        yield moto
    finally:
        elbv2_models.FakeTargetGroup.health_for = original_health
        for call, fn in {**originals, **route_calls}.items():
            setattr(elbv2_models.ELBv2Backend, call, fn)
        server.stop()


class VoidWatch:
    """Samples what the ALB would do every 100 ms (from moto's own state) and records *void windows*:
    a moment when a group with weight above 0 has no healthy target (requests get 503s), or a stretch
    longer than one health-check interval in which it has fewer healthy targets than its side has
    Ready pods (Kubernetes believes in capacity the ALB does not send to)."""

    def __init__(
        self, moto, route_arn: str, pods: dict[str, tuple] | None = None, interval: float = 5.0, every: float = 0.1
    ):
        self.moto, self.route, self.every, self.interval = moto, route_arn, every, interval
        self.pods = pods or {}  # group ARN -> (kube, namespace, label selector) of the pods behind it
        self.samples = 0
        self.voids: list[tuple[float, str, str]] = []  # (time, group, what)
        self._short_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ready_pods(self, arn: str) -> int | None:
        if arn not in self.pods:
            return None
        kube, namespace, selector = self.pods[arn]
        pods = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector=selector).items
        return sum(
            1
            for p in pods
            if not p.metadata.deletion_timestamp
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())
        )

    def _run(self):
        while not self._stop.is_set():
            try:
                served = self.moto.served(self.route)
            except (KeyError, IndexError):  # the route is being replaced: nothing routes through it now
                served = {}
            now = time.monotonic()
            self.samples += 1
            for arn, (weight, healthy) in served.items():
                if weight <= 0:
                    self._short_since.pop(arn, None)
                    continue
                if healthy == 0:
                    self.voids.append((now, arn, f"weight {weight} and no healthy target"))
                ready = self._ready_pods(arn)
                if ready is not None and healthy < ready:
                    since = self._short_since.setdefault(arn, now)
                    if now - since > self.interval:
                        self.voids.append(
                            (now, arn, f"{healthy} healthy targets for {ready} Ready pods for {now - since:.1f}s")
                        )
                else:
                    self._short_since.pop(arn, None)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
