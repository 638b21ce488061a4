import asyncio
import threading

from awsctl.controllers.wakeups import Wakeups


def test_only_waiting_phases_are_woken_from_other_threads():
    async def scenario():
        wakeups = Wakeups()
        event = wakeups.register(("ns", "web"))
        wakeups.phase(("ns", "web"), "Progressing")  # an analysis step: never hurried
        assert not wakeups.wake(("ns", "web"))
        wakeups.phase(("ns", "web"), "Initializing")
        woke = []
        thread = threading.Thread(target=lambda: woke.append(wakeups.wake(("ns", "web"))))
        thread.start()
        await asyncio.wait_for(event.wait(), timeout=2)
        thread.join()
        wakeups.unregister(("ns", "web"))
        return woke[0], wakeups.wake(("ns", "web"))

    assert asyncio.run(scenario()) == (True, False)
