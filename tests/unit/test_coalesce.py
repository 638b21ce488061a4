import threading
import time

from awsctl.controllers.coalesce import Coalescer
from awsctl.planning.gates import selector_matches


def test_burst_of_triggers_folds_into_one_rerun():
    coalescer, runs, gate = Coalescer(), [], threading.Event()

    def work():
        runs.append(1)
        gate.wait(5)

    first = threading.Thread(target=coalescer.trigger, args=("k", work))
    first.start()
    while not runs:
        time.sleep(0.01)
    for _ in range(20):  # arrive while the first run holds the key
        assert coalescer.trigger("k", work) is None
    gate.set()
    first.join(5)
    assert len(runs) == 2  # the first run, plus exactly one for the whole burst


def test_selector_matching():
    assert selector_matches({"app": "web"}, {"app": "web", "pod-template-hash": "x"})
    assert not selector_matches({"app": "web"}, {"app": "api"})
    assert not selector_matches({}, {"app": "web"})
