"""The API budget: priorities, adaptive slow-down on Throttling, and the flag form of a rate."""

import threading
import time

import pytest

from awsctl.aws.budget import Bucket, Budget, Priority, Rate, category, default_priority, parse_rate, urgency


def test_categories_follow_awss_documented_buckets():
    assert category("elbv2", "RegisterTargets") == category("elbv2", "DeregisterTargets") == "elbv2-register"
    assert category("elbv2", "DescribeTargetHealth") == "elbv2-describe"
    assert category("elbv2", "ModifyRule") == category("elbv2", "AddTags") == "elbv2-modify"
    assert category("cloudwatch", "GetMetricData") == "cloudwatch"
    assert (
        default_priority("DeregisterTargets")
        < default_priority("ModifyRule")
        < default_priority("RegisterTargets")
        < default_priority("DescribeRules")
    )


def test_a_rollback_overtakes_a_queue_of_registrations():
    bucket = Bucket(Rate(1, 20.0))  # one token every 50 ms
    bucket.acquire(Priority.REGISTER)  # the burst is spent
    order: list[str] = []

    def take(label: str, priority: Priority) -> None:
        bucket.acquire(priority)
        order.append(label)

    waiting = [threading.Thread(target=take, args=(f"register-{i}", Priority.REGISTER)) for i in range(4)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 2
    while bucket.waiting() < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert bucket.waiting() >= 3  # at most one register may have got its token meanwhile
    already = len(order)
    rollback = threading.Thread(target=take, args=("rollback", Priority.ROLLBACK))
    rollback.start()
    for thread in [*waiting, rollback]:
        thread.join(5)
    assert order[already] == "rollback"
    assert sorted(order) == sorted(["rollback"] + [f"register-{i}" for i in range(4)])


def test_the_rate_is_kept():
    bucket = Bucket(Rate(2, 20.0))
    started = time.monotonic()
    for _ in range(6):
        bucket.acquire(Priority.ROUTINE)
    # 2 from the burst, then 4 at 20/s: at least 0.2 s, never a free-for-all
    assert 0.18 <= time.monotonic() - started < 1.0


def test_throttling_halves_the_rate_and_successes_bring_it_back():
    budget = Budget({"elbv2-modify": Rate(20, 3.0)})
    bucket = budget.buckets["elbv2-modify"]
    budget.outcome("elbv2", "ModifyRule", "Throttling")
    assert bucket.rate == 1.5 and budget.throttled() == 1
    for _ in range(40):
        budget.outcome("elbv2", "ModifyRule", None)
    assert bucket.rate == 3.0
    for _ in range(20):
        bucket.throttled()
    assert bucket.rate == pytest.approx(0.3)  # never below a tenth: the operator keeps moving


def test_urgency_keeps_the_more_urgent_outer_priority_and_target_writes_their_own():
    budget = Budget({"elbv2-register": Rate(1, 1000.0)})
    seen: list[int] = []
    budget.buckets["elbv2-register"].acquire = lambda priority, cancel=None: seen.append(priority) or 0.0
    budget.buckets["elbv2-describe"].acquire = lambda priority, cancel=None: seen.append(priority) or 0.0
    with urgency(Priority.ROLLBACK):
        with urgency(Priority.ROUTINE):
            budget.before_send("elbv2", "DescribeRules")
        budget.before_send("elbv2", "RegisterTargets")
    budget.before_send("elbv2", "DescribeTargetHealth")
    assert seen == [Priority.ROLLBACK, Priority.REGISTER, Priority.ROUTINE]


@pytest.mark.parametrize("text", ["20", "a/b", "0/4", "20/0", "20/-1"])
def test_bad_rates_are_refused_with_the_form_to_use(text):
    with pytest.raises(ValueError):
        parse_rate(text)
    assert parse_rate("20/4") == Rate(20, 4.0)


def test_a_cancelled_wait_gives_up_its_place_and_a_sent_call_is_untouched():
    from awsctl.aws.budget import Superseded, cancellable

    budget = Budget({"elbv2-register": Rate(1, 0.5)})  # one token, then one every 2 s
    budget.before_send("elbv2", "RegisterTargets")
    cancel = threading.Event()
    outcome: list[str] = []

    def waiting_register() -> None:
        with cancellable(cancel):
            try:
                budget.before_send("elbv2", "RegisterTargets")
                outcome.append("sent")
            except Superseded:
                outcome.append("superseded")

    thread = threading.Thread(target=waiting_register)
    thread.start()
    while budget.buckets["elbv2-register"].waiting() < 1:
        time.sleep(0.001)
    started = time.monotonic()
    cancel.set()
    budget.interrupt()
    thread.join(2)
    assert outcome == ["superseded"] and time.monotonic() - started < 0.5
    assert budget.buckets["elbv2-register"].waiting() == 0
