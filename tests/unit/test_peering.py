"""A paused replica's binding queue and sweep write nothing: the gate follows kopf's own peering decision."""

import asyncio
import logging

import pytest

from awsctl.aws.budget import Priority
from awsctl.controllers.bindings import BindingQueue
from awsctl.controllers.peering import KOPF_PEERING_LOGGER, PeeringGate, verdict


@pytest.mark.parametrize(
    "message, said",
    [
        ("Pausing operations in favour of [Peer(identity='b', priority=300)].", False),
        ("Pausing all operators, including self: [...]", False),
        ("Resuming operations after the pause. Conflicting operators with the same priority are gone.", True),
        ("Resuming operations after the pause. Conflicting operators with the higher priority are gone.", True),
        ("Possibly conflicting operators with the same priority: [...]", None),
        ("Keep-alive in 'awsctl' cluster-wide: ok.", None),
    ],
)
def test_kopf_s_peering_words_open_and_close_the_gate(message, said):
    assert verdict(message) is said


class Reconciler:
    def __init__(self):
        self.ran = []

    def reconcile(self, namespace, name):
        self.ran.append((namespace, name))


def test_a_paused_replica_runs_no_binding_until_kopf_resumes_it():
    async def story():
        gate = PeeringGate(peering=True)  # mandatory peering starts paused, as kopf does
        handler = gate.follow_kopf()
        reconciler = Reconciler()
        queue = BindingQueue(reconciler, workers=2, resync_seconds=0.05, gate=gate)  # type: ignore[arg-type]
        await queue.start()
        try:
            queue.track(("shop", "web"))
            queue.put(("shop", "web"), Priority.REGISTER)  # an event, and the sweep, while paused
            await asyncio.sleep(0.3)
            assert reconciler.ran == []
            logging.getLogger(KOPF_PEERING_LOGGER).info("Resuming operations after the pause. ...")
            await asyncio.sleep(0.2)
            assert reconciler.ran and set(reconciler.ran) == {("shop", "web")}
            logging.getLogger(KOPF_PEERING_LOGGER).info("Pausing operations in favour of [...].")
            await asyncio.sleep(0.1)  # what was running finishes; nothing starts after
            count = len(reconciler.ran)
            await asyncio.sleep(0.3)  # six sweep periods
            assert len(reconciler.ran) == count
        finally:
            await queue.stop()
            logging.getLogger(KOPF_PEERING_LOGGER).removeHandler(handler)

    asyncio.run(story())
