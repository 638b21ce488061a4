"""One status PATCH per tick, with the write-aheads sent before the change they announce."""

import pytest

from awsctl.controllers.canary_status import CanaryStatusWriter


class Patches:
    def __init__(self):
        self.sent = []

    def patch_status(self, plural, namespace, name, changes):
        self.sent.append(changes)


def canary(status=None):
    return {"metadata": {"namespace": "ns", "name": "web"}, "status": dict(status or {})}


def test_a_tick_sends_what_changed_once_at_the_end():
    kube, body = Patches(), canary({"phase": "Progressing", "canaryWeight": 5})
    writer = CanaryStatusWriter(kube)
    with writer.tick(body):
        writer.write(body, body["status"], {"metrics": [{"name": "m"}]})
        writer.write(body, body["status"], {"canaryWeight": 5, "phase": "Progressing"})  # nothing new
        writer.write(body, body["status"], {"canaryWeight": 10, "message": "advancing"})
        assert kube.sent == [] and body["status"]["canaryWeight"] == 10  # the tick sees its own changes
    assert kube.sent == [{"metrics": [{"name": "m"}], "canaryWeight": 10, "message": "advancing"}]


def test_a_write_ahead_goes_at_once_with_what_was_gathered():
    kube, body = Patches(), canary()
    writer = CanaryStatusWriter(kube)
    with writer.tick(body):
        writer.write(body, body["status"], {"message": "taking the route"})
        writer.writer(body)({"targetReplicas": 3})
        assert kube.sent == [{"message": "taking the route", "targetReplicas": 3}]
        writer.write(body, body["status"], {"phase": "Initialized"})
    assert kube.sent[1:] == [{"phase": "Initialized"}]


def test_an_object_changed_twice_is_patched_in_turn():
    """{"a": 1} then {"b": 2} merge into the stored object; one patch of the last would drop a."""
    kube, body = Patches(), canary()
    writer = CanaryStatusWriter(kube)
    with writer.tick(body):
        writer.write(body, body["status"], {"commands": {"promote": "v1 t1"}})
        writer.write(body, body["status"], {"commands": {"abort": "v1 t2"}})
    assert kube.sent == [{"commands": {"promote": "v1 t1"}}, {"commands": {"abort": "v1 t2"}}]


def test_a_failing_tick_still_sends_its_changes_and_outside_a_tick_writes_go_at_once():
    kube, body = Patches(), canary()
    writer = CanaryStatusWriter(kube)
    with pytest.raises(RuntimeError), writer.tick(body):
        writer.write(body, body["status"], {"message": "half way"})
        raise RuntimeError("AWS went away")
    assert kube.sent == [{"message": "half way"}]
    writer.write(body, body["status"], {"phase": "Terminating"})
    assert kube.sent[-1] == {"phase": "Terminating"}
