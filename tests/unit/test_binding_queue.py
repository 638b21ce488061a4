"""The binding queue's order: a change's own health read goes ahead of other bindings' registrations,
and a settled binding comes back only on its drift timer."""

import asyncio
import time

from awsctl.aws.budget import Priority
from awsctl.controllers.binding_reconciler import Outcome
from awsctl.controllers.bindings import BindingQueue


class Reconciler:
    """Each run takes `seconds` (as a registration waiting on its API bucket does); `outcomes` gives
    what the first runs of a key return, in order."""

    def __init__(self, seconds: float, outcomes: dict):
        self.seconds = seconds
        self.outcomes = outcomes
        self.ran: list[tuple[str, str]] = []

    def reconcile(self, namespace, name):
        self.ran.append((namespace, name))
        time.sleep(self.seconds)
        queued = self.outcomes.get((namespace, name)) or []
        return queued.pop(0) if queued else Outcome(True, "Synced")


def run_queue(reconciler, keys, seconds):
    async def story():
        queue = BindingQueue(reconciler, workers=1, resync_seconds=3600)  # type: ignore[arg-type]
        await queue.start()
        try:
            for key in keys:
                queue.track(key)
                queue.put(key, Priority.REGISTER)
            await asyncio.sleep(seconds)
        finally:
            await queue.stop()

    asyncio.run(story())


def test_a_change_s_health_read_goes_ahead_of_other_bindings_registrations():
    keys = [("ns", f"b{i}") for i in range(8)]
    reconciler = Reconciler(0.05, {keys[0]: [Outcome(True, "Synced", writes=1, recheck=0.06)]})
    run_queue(reconciler, keys, 0.6)
    again = reconciler.ran.index(keys[0], 1)
    assert again <= 3, reconciler.ran  # not after all 7 other registrations (it was read last before)
    assert len(reconciler.ran) == 9


def test_a_settled_binding_comes_back_on_its_drift_timer_after_queued_work():
    keys = [("ns", f"b{i}") for i in range(4)]
    drift = Outcome(True, "Synced", idle_recheck=0.01)
    reconciler = Reconciler(0.05, {keys[0]: [drift, Outcome(True, "Synced")]})
    run_queue(reconciler, keys, 0.5)
    assert reconciler.ran == keys + [keys[0]]  # the drift read waits for the registrations


def test_a_refused_binding_looks_again_on_its_own_timer():
    key = ("ns", "b0")
    refused = Outcome(False, "TargetGroupNotFound", idle_recheck=0.05)
    reconciler = Reconciler(0.0, {key: [refused, refused, Outcome(True, "Synced")]})
    run_queue(reconciler, [key], 0.4)
    assert reconciler.ran == [key, key, key]  # twice refused, then synced; nothing after
