"""One AWS API budget per operator process: token buckets per ELBv2 category and for CloudWatch,
served most urgent first.

ELBv2 throttles per account and region, and every replica, every other tool and the console share
that budget. A call that AWS throttles is retried by botocore after a back-off, in no particular
order; a call that waits here for its token instead goes in priority order, so a burst of
registrations never delays a rollback's weight write. A `Throttling` that still arrives (someone
else spent the budget) halves the bucket's rate, which then climbs back as calls succeed.

The priority of a call comes from the code that makes it (`with urgency(Priority.ROLLBACK):`);
without one, the operation's own default applies (a deregistration is more urgent than a read).
Target writes always go at their own priority: a binding reconciled urgently for a terminating
pod deregisters at DEREGISTER, but its registrations still wait behind rollbacks.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from awsctl import metrics


class Priority(IntEnum):
    """Lower is more urgent."""

    ROLLBACK = 1  # a weight back to the primary (rollback, bake failure, deletion) and its read-back
    DEREGISTER = 2  # terminating pods leave their target groups
    STEP = 3  # weight steps, their read-back, route and group changes
    CONFIRM = 4  # a change's own follow-up: health read once new targets can have passed their checks
    REGISTER = 5  # new targets
    ROUTINE = 6  # routine reads and drift checks


_urgency: contextvars.ContextVar[Priority | None] = contextvars.ContextVar("awsctl_urgency", default=None)
_cancel: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("awsctl_cancel", default=None)


class Superseded(Exception):
    """A call still waiting for its token was given up: newer, more urgent work replaces the work
    that wanted it (a binding reconciled for a registration, when one of its pods starts terminating)."""


@contextlib.contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Calls made inside that are still waiting for a token when `event` is set raise Superseded
    (after `Budget.interrupt()` wakes them); a call already sent is never affected."""
    token = _cancel.set(event)
    try:
        yield
    finally:
        _cancel.reset(token)


@contextlib.contextmanager
def urgency(priority: Priority) -> Iterator[None]:
    """Every AWS call made inside (in this thread or task) waits for its token at `priority`; an
    outer, more urgent priority is kept."""
    outer = _urgency.get()
    token = _urgency.set(priority if outer is None else min(outer, priority))
    try:
        yield
    finally:
        _urgency.reset(token)


@dataclass(frozen=True)
class Rate:
    burst: int
    per_second: float


# AWS's documented ELBv2 limits per account and region; CloudWatch GetMetricData and
# DescribeAlarms allow more, and share one bucket here.
DEFAULT_RATES = {
    "elbv2-register": Rate(20, 4.0),
    "elbv2-describe": Rate(40, 10.0),
    "elbv2-modify": Rate(20, 3.0),
    "cloudwatch": Rate(50, 20.0),
    "ec2": Rate(100, 20.0),
}


def category(service: str, operation: str) -> str:
    if service == "elbv2":
        if operation in ("RegisterTargets", "DeregisterTargets"):
            return "elbv2-register"
        if operation.startswith("Describe"):
            return "elbv2-describe"
        return "elbv2-modify"
    return service if service in ("cloudwatch", "ec2") else "other"


def default_priority(operation: str) -> Priority:
    if operation == "DeregisterTargets":
        return Priority.DEREGISTER
    if operation == "RegisterTargets":
        return Priority.REGISTER
    if operation.startswith(("Describe", "Get", "List")):
        return Priority.ROUTINE
    return Priority.STEP


def held_back(burst: int) -> int:
    """Tokens of a burst kept in reserve: a call leaves here a moment before AWS counts it, and
    concurrent calls arrive in a jittered order; the reserve absorbs that (about 200 ms at 10/s)."""
    return min(burst - 1, max(2, burst // 10))


class Bucket:
    """A token bucket whose waiters are served by priority, then in arrival order. The rate adapts:
    halved on a `Throttling` from AWS (never below a tenth), raised by a twentieth of the configured
    rate on each success until it is back."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic):
        self.configured = rate
        self.capacity = float(max(1, rate.burst - held_back(rate.burst)))
        self.rate = rate.per_second
        self.clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._cond = threading.Condition()
        self._queue: list[tuple[int, int]] = []
        self._order = itertools.count()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, priority: int, cancel: threading.Event | None = None) -> float:
        """Blocks until this caller's token is due; returns the seconds it waited."""
        started = self.clock()
        ticket = (int(priority), next(self._order))
        with self._cond:
            heapq.heappush(self._queue, ticket)
            try:
                while True:
                    self._refill()
                    if self._queue[0] == ticket and self._tokens >= 1.0:
                        self._tokens -= 1.0
                        return self.clock() - started
                    if cancel is not None and cancel.is_set():  # only a call that would wait gives way
                        raise Superseded()
                    # Only the head of the queue sleeps on a deadline; the rest wait to be told.
                    timeout = (1.0 - self._tokens) / self.rate if self._queue[0] == ticket else None
                    self._cond.wait(timeout)
            finally:
                self._queue.remove(ticket)
                heapq.heapify(self._queue)
                self._cond.notify_all()

    def throttled(self) -> None:
        with self._cond:
            self._refill()
            self.rate = max(self.configured.per_second / 10, self.rate / 2)
            self._tokens = 0.0
            self._cond.notify_all()

    def succeeded(self) -> None:
        if self.rate < self.configured.per_second:
            with self._cond:
                self.rate = min(self.configured.per_second, self.rate + self.configured.per_second / 20)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)


class Budget:
    """The process's buckets, and the counts of what they saw (calls, waits, throttles by AWS)."""

    def __init__(self, rates: dict[str, Rate] | None = None, clock: Callable[[], float] = time.monotonic):
        rates = {**DEFAULT_RATES, **(rates or {})}
        self.buckets = {name: Bucket(rate, clock) for name, rate in rates.items()}
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()  # (operation, outcome) -> n
        self.waited: dict[str, float] = defaultdict(float)  # category -> seconds spent waiting

    def bucket_of(self, service: str, operation: str) -> Bucket | None:
        return self.buckets.get(category(service, operation))

    def before_send(self, service: str, operation: str) -> None:
        bucket = self.bucket_of(service, operation)
        if bucket is None:
            return
        own = default_priority(operation)
        priority = own if operation in TARGET_WRITES else (_urgency.get() or own)
        waited = bucket.acquire(priority, _cancel.get())
        if waited:
            with self._lock:
                self.waited[category(service, operation)] += waited

    def outcome(self, service: str, operation: str, code: str | None) -> None:
        bucket = self.bucket_of(service, operation)
        result = "ok" if not code else "throttled" if code in THROTTLING_CODES else "error"
        with self._lock:
            self.calls[(operation, result)] += 1
        metrics.aws_calls.labels(service, operation, result).inc()
        if bucket is not None:
            (bucket.throttled if result == "throttled" else bucket.succeeded)()

    def interrupt(self) -> None:
        """Wakes every waiting call, so that cancelled ones (see `cancellable`) give up."""
        for bucket in self.buckets.values():
            bucket.wake()

    def throttled(self) -> int:
        with self._lock:
            return sum(n for (_, result), n in self.calls.items() if result == "throttled")

    def attach(self, client) -> None:
        """Hooks botocore's per-attempt events: each HTTP attempt (retries included) takes a token,
        and each response reports whether AWS throttled it."""
        service = client.meta.service_model.service_name

        def on_send(event_name: str, **_) -> None:
            self.before_send(service, event_name.rsplit(".", 1)[-1])

        def on_response(event_name: str, response=None, **_) -> None:
            if response is None:  # a connection error: botocore retries it, nothing was spent at AWS
                metrics.aws_calls.labels(service, event_name.rsplit(".", 1)[-1], "error").inc()
                return None
            parsed = response[1] if isinstance(response, tuple) else {}
            code = ((parsed or {}).get("Error") or {}).get("Code")
            self.outcome(service, event_name.rsplit(".", 1)[-1], code)
            return None  # never decide the retry: botocore's policy does

        events = client.meta.events
        events.register(f"before-send.{client.meta.service_model.service_id.hyphenize()}", on_send)
        events.register_first(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", on_response)


TARGET_WRITES = frozenset({"RegisterTargets", "DeregisterTargets"})
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})


def parse_rate(text: str) -> Rate:
    """`BURST/PER_SECOND`, e.g. `20/4`: the flag form of a bucket."""
    try:
        burst, per_second = text.split("/", 1)
        rate = Rate(int(burst), float(per_second))
    except ValueError as err:
        raise ValueError(f"{text!r}: expected BURST/PER_SECOND, e.g. 20/4") from err
    if rate.burst < 1 or rate.per_second <= 0:
        raise ValueError(f"{text!r}: burst must be >= 1 and the rate > 0")
    return rate
