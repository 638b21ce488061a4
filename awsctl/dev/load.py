"""An open-loop load generator: requests at a fixed rate, whatever the answers take.

Request i is sent at start + i / rate, not when request i-1 returns, so a slow or failing target
cannot slow the load down and hide its own failures (closed-loop generators do). Every response
is recorded: when it was sent, its status (0 for a connection error), the version and pod that
answered (`X-Dev-Version`, `X-Dev-Pod` from `awsctl dev`'s pods), and its latency.

`awsctl dev load URL --rate 50 --duration 30` runs it from the command line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import aiohttp


@dataclass
class Response:
    sent: float  # seconds since the start
    status: int  # 0: no HTTP answer (connection error or client timeout)
    latency: float
    version: str | None = None
    pod: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300


@dataclass
class Summary:
    requests: int
    failures: int
    statuses: dict[str, int]
    latency_ms: dict[str, float]  # p50, p90, p99, max
    share: list[dict] = field(default_factory=list)  # per window: {"start": s, "versions": {v: share}}
    rate: float = 0.0  # achieved, requests per second

    def line(self) -> str:
        lat = self.latency_ms
        return (
            f"{self.requests} requests, {self.failures} failed, {self.rate:.1f}/s; "
            f"latency p50 {lat.get('p50', 0):.1f} ms, p99 {lat.get('p99', 0):.1f} ms; statuses "
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def summarize(responses: list[Response], window: float = 1.0, duration: float | None = None) -> Summary:
    latencies = [r.latency * 1000 for r in responses]
    windows: dict[int, Counter] = defaultdict(Counter)
    for r in responses:
        if r.version and not r.failed:
            windows[int(r.sent // window)][r.version] += 1
    share = []
    for index in sorted(windows):
        total = sum(windows[index].values())
        share.append({"start": index * window, "versions": {v: n / total for v, n in sorted(windows[index].items())}})
    span = duration or (max((r.sent for r in responses), default=0.0) or 1.0)
    return Summary(
        requests=len(responses),
        failures=sum(r.failed for r in responses),
        statuses=dict(Counter(str(r.status) for r in responses)),
        latency_ms={
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "max": max(latencies, default=0.0),
        },
        share=share,
        rate=len(responses) / span if span else 0.0,
    )


class Load:
    """Runs in its own thread, so a test can go on while the load runs; `stop()` ends it."""

    def __init__(
        self,
        url: str,
        rate: float,
        *,
        timeout: float = 70.0,
        headers: dict[str, str] | None = None,
        fresh_connections: bool = False,
    ):
        """`fresh_connections`: one TCP connection per request, as many clients of an NLB open them (each new
        connection follows the weights there; a kept-alive one stays on its target)."""
        if rate <= 0:
            raise ValueError("rate must be above 0")
        self.url, self.rate, self.timeout = url, rate, timeout
        self.fresh_connections = fresh_connections
        self.headers = dict(headers or {})
        self.responses: list[Response] = []
        self.started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._duration: float | None = None

    def start(self, duration: float | None = None) -> Load:
        self._duration = duration
        self.started = time.monotonic()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True, name="awsctl-load")
        self._thread.start()
        return self

    def stop(self) -> Summary:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 10)
        return self.summary()

    def wait(self) -> Summary:
        if self._thread is not None:
            self._thread.join()
        return self.summary()

    def summary(self) -> Summary:
        return summarize(list(self.responses), duration=time.monotonic() - self.started if self.started else None)

    def since(self, seconds: float) -> list[Response]:
        return [r for r in list(self.responses) if r.sent >= seconds]

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=self.fresh_connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            if self.fresh_connections:
                # aiohttp (3.10+) sends an idempotent request again, once, when its connection is reset or
                # closed before the answer: with one connection per request that would hide a failed
                # connection behind a second one. What is counted here is connections.
                session._retry_connection = False
            pending: set[asyncio.Task] = set()
            index = 0
            while not self._stop.is_set():
                at = index / self.rate
                if self._duration is not None and at >= self._duration:
                    break
                delay = self.started + at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(min(delay, 0.05))
                    continue
                task = asyncio.ensure_future(self._one(session, at))
                pending.add(task)
                task.add_done_callback(pending.discard)
                index += 1
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _one(self, session: aiohttp.ClientSession, at: float) -> None:
        began = time.monotonic()
        try:
            async with session.get(
                self.url, headers=self.headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as answer:
                await answer.read()
                response = Response(
                    at,
                    answer.status,
                    time.monotonic() - began,
                    answer.headers.get("X-Dev-Version"),
                    answer.headers.get("X-Dev-Pod"),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            response = Response(at, 0, time.monotonic() - began, error=type(err).__name__)
        self.responses.append(response)


def run(url: str, rate: float, duration: float, *, output: str = "text", progress: bool = True) -> int:
    """`awsctl dev load`: prints a line a second while it runs, then the summary; exit 1 if any failed."""
    load = Load(url, rate).start(duration)
    shown = 0
    while load._thread is not None and load._thread.is_alive():
        time.sleep(1.0)
        if progress and output == "text":
            done = list(load.responses)
            recent = done[shown:]
            shown = len(done)
            versions = Counter(r.version or "-" for r in recent if not r.failed)
            print(
                f"{time.monotonic() - load.started:6.1f}s  {len(recent):4d} answered  "
                f"{sum(r.failed for r in recent):3d} failed  "
                + "  ".join(f"{v} {n / max(1, len(recent)):.0%}" for v, n in versions.most_common()),
                file=sys.stderr,
                flush=True,
            )
    summary = load.wait()
    if output == "json":
        print(json.dumps({**asdict(summary), "responses": [asdict(r) for r in load.responses]}))
    else:
        print(summary.line())
    return 1 if summary.failures else 0
