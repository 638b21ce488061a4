"""The write fence: whether this replica is the active one is read from kopf's peering objects (never
from kopf's log), a replica opens only after its rival has had time to close, and a closed gate
refuses every AWS and Kubernetes write, the binding queue's included."""

import asyncio
import datetime

import pytest

from awsctl.aws.budget import Priority
from awsctl.aws.clients import Clients
from awsctl.controllers.bindings import BindingQueue
from awsctl.controllers.peering import Fenced, PeeringGate
from awsctl.kube.client import Kube, Rest
from awsctl.planning.peering import deadline, may_write, verdict
from tests.unit.test_kube_client import FakeApiServer, write_kubeconfig

NOW = 1_800_000_000.0


def record(priority: int, seen_ago: float = 1.0, lifetime: int = 10) -> dict:
    seen = datetime.datetime.fromtimestamp(NOW - seen_ago, datetime.UTC)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


@pytest.mark.parametrize(
    "statuses, active",
    [
        ([{"me": record(200)}], True),  # alone
        ([{"me": record(200), "b": record(100)}], True),  # a standby of lower priority
        ([{"me": record(200), "b": record(300)}], False),  # outranked
        ([{"me": record(200), "b": record(200)}], False),  # a tie pauses both, as kopf does
        ([{"me": record(200), "b": record(300, seen_ago=11)}], True),  # the higher one is dead
        ([{"me": record(200, seen_ago=11)}], False),  # our own keep-alive lapsed: peers count us dead
        ([{"b": record(100)}], False),  # not in the object yet
        ([None], False),  # the object is missing
        ([{"me": record(200)}, {"me": record(200), "b": record(300)}], False),  # outranked in one namespace
        ([{"me": record(200), "b": {"priority": 300}}], True),  # an unreadable record is not live
    ],
)
def test_the_verdict_applies_kopf_s_rule_to_the_records(statuses, active):
    assert verdict("me", 200, statuses, NOW).active is active


def test_a_deadline_is_last_seen_plus_lifetime():
    assert deadline(record(1, seen_ago=3, lifetime=10)) == pytest.approx(NOW + 7)
    assert deadline({"lastseen": "yesterday"}) == 0.0


@pytest.mark.parametrize(
    "since, now, open_", [(None, 100.0, False), (99.0, 100.0, False), (95.0, 100.0, True), (100.0, 105.0, True)]
)
def test_a_replica_opens_only_after_settling(since, now, open_):
    assert may_write(since, now, settle=5.0) is open_


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def gate_at(clock: Clock) -> PeeringGate:
    return PeeringGate(True, identity="me", priority=200, lifetime=10, clock=lambda: NOW + clock.t, monotonic=clock)


def alone(clock: Clock) -> list[dict]:
    return [{"me": record(200, seen_ago=-clock.t)}]


def outranked(clock: Clock) -> list[dict]:
    return [{"me": record(200, seen_ago=-clock.t), "b": record(300, seen_ago=-clock.t)}]


def poll_for(gate: PeeringGate, clock: Clock, seconds: float, statuses) -> None:
    """The gate's reads, one per poll period, for `seconds`."""
    end = clock.t + seconds
    while clock.t < end:
        gate.observe(statuses(clock))
        clock.t += gate.poll
    gate.observe(statuses(clock))


def test_the_gate_opens_after_settling_closes_at_once_and_when_reads_go_stale():
    clock = Clock()
    gate = gate_at(clock)
    assert not gate.is_open()  # mandatory peering starts paused
    gate.observe(alone(clock))
    assert not gate.is_open()  # active, not yet settled: the outranked replica may not have seen us
    poll_for(gate, clock, gate.settle, alone)
    assert gate.is_open()
    gate.fence("PATCH /status")  # no raise
    clock.t += gate.poll
    gate.observe(outranked(clock))
    assert not gate.is_open()  # outranked: closed on the first read that shows it
    with pytest.raises(Fenced):
        gate.fence("ModifyRule")
    clock.t += gate.poll
    gate.observe(alone(clock))
    assert not gate.is_open()  # the rival left: settle again
    poll_for(gate, clock, gate.settle, alone)
    assert gate.is_open()
    clock.t += gate.stale_after  # no read since: the peers may count this replica dead
    assert not gate.is_open()
    gate.observe(alone(clock))
    assert not gate.is_open()  # read again after a gap: settle again
    poll_for(gate, clock, gate.settle, alone)
    assert gate.is_open()


def test_without_peering_the_gate_is_always_open():
    gate = PeeringGate(False)
    assert gate.is_open()
    gate.fence("ModifyRule")


def test_a_closed_gate_refuses_kubernetes_writes_before_they_are_sent(tmp_path):
    gate = PeeringGate(True, identity="me", priority=1)
    with FakeApiServer(accepted="abc") as server:
        rest = Rest(str(write_kubeconfig(tmp_path, server.url, {"token": "abc"})), fence=gate.fence)
        kube = Kube(rest)
        kube.get_service("team", "web")  # reads pass
        with pytest.raises(Fenced):
            kube.patch_status("canaries", "team", "web", {"phase": "Progressing"})
        with pytest.raises(Fenced):
            kube.event(
                {"kind": "Canary", "metadata": {"name": "web", "namespace": "team"}},
                type="Normal",
                reason="R",
                message="m",
            )
        assert [method for method, *_ in server.seen] == ["GET"]


def test_a_closed_gate_refuses_aws_writes_before_they_are_sent(monkeypatch):
    """The endpoint is a closed port: a write that were sent would fail on the connection instead."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients = Clients()
    clients.fence = PeeringGate(True, identity="me", priority=1).fence
    with pytest.raises(Fenced, match="ModifyRule"):
        clients.elbv2.modify_rule(RuleArn="arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/a/1/2/3")
    with pytest.raises(Fenced, match="RegisterTargets"):
        clients.elbv2.register_targets(TargetGroupArn="arn:x", Targets=[{"Id": "10.0.0.1"}])


class Reconciler:
    def __init__(self):
        self.ran = []

    def reconcile(self, namespace, name):
        self.ran.append((namespace, name))


def test_a_paused_replica_runs_no_binding_until_the_gate_opens():
    async def story():
        clock = Clock()
        gate = gate_at(clock)
        reconciler = Reconciler()
        queue = BindingQueue(reconciler, workers=2, resync_seconds=0.05, gate=gate)  # type: ignore[arg-type]
        await queue.start()
        try:
            queue.track(("shop", "web"))
            queue.put(("shop", "web"), Priority.REGISTER)  # an event, and the sweep, while paused
            await asyncio.sleep(0.3)
            assert reconciler.ran == []
            poll_for(gate, clock, gate.settle, alone)
            await asyncio.sleep(0.2)
            assert reconciler.ran and set(reconciler.ran) == {("shop", "web")}
            gate.observe(outranked(clock))
            await asyncio.sleep(0.1)  # what was running finishes; nothing starts after
            count = len(reconciler.ran)
            await asyncio.sleep(0.3)  # six sweep periods
            assert len(reconciler.ran) == count
        finally:
            await queue.stop()

    asyncio.run(story())


class PausedMidWay:
    """A reconcile during which a rival of higher priority appears: its write is refused."""

    def __init__(self, gate: PeeringGate, clock: Clock):
        self.gate, self.clock, self.ran = gate, clock, []

    def reconcile(self, namespace, name):
        self.ran.append(self.gate.is_open())
        if len(self.ran) == 1:
            self.gate.observe(outranked(self.clock))
        self.gate.fence("RegisterTargets")


def test_a_reconcile_fenced_mid_way_runs_again_when_the_gate_reopens():
    async def story():
        clock = Clock()
        gate = gate_at(clock)
        reconciler = PausedMidWay(gate, clock)
        queue = BindingQueue(reconciler, workers=1, gate=gate)  # type: ignore[arg-type]
        await queue.start()
        try:
            poll_for(gate, clock, gate.settle, alone)
            queue.put(("shop", "web"), Priority.REGISTER)
            await asyncio.sleep(0.2)
            assert reconciler.ran == [True]  # fenced; waits, queued, while the rival lives
            clock.t += 1
            gate.observe(alone(clock))
            await asyncio.sleep(0.2)
            assert reconciler.ran == [True]
            poll_for(gate, clock, gate.settle, alone)
            await asyncio.sleep(0.2)
            assert reconciler.ran == [True, True]  # ran again, and wrote
        finally:
            await queue.stop()

    asyncio.run(story())
