"""Pods that answer: a real HTTP server on 127.0.0.1 for every port of every pod in `awsctl dev`.

kwok gives a pod an IP but runs nothing. This process watches the cluster's pods and, for each
declared TCP `containerPort` of a running pod, serves HTTP on a free loopback port. The data
plane looks a target's `podIP:port` up in this process's table (`GET /pods`) and dials the
loopback address instead: a pod IP is never dialled, and no traffic leaves 127.0.0.1.

One process serves every pod (one asyncio loop, one listening socket per pod port): measured at
100 pods in `benchmarks/RESULTS.md`.

The contract, read from the container's `env` (and the pod's annotations):

| setting | meaning | default |
|---|---|---|
| `DEV_VERSION` | the version the pod answers with | the image's tag |
| `DEV_ERROR_RATE` | share of requests answered 500 (0 to 1) | 0 |
| `DEV_RESET_RATE` | share of requests whose connection is reset (a TCP RST) instead of answered (0 to 1) | 0 |
| `DEV_LATENCY_MS` | added to every answer but health checks | 0 |
| `DEV_START_DELAY_SECONDS`, or the `awsctl.io/dev-start-delay` annotation (`5s`, `500ms`) | how long after the pod starts before it listens | 0 |
| `DEV_HEALTH_PATH` | a path answered as a health check | `/healthz` |
| `DEV_HEALTH_STATUS` | the status health checks get | 200 |

A request is a health check when its path is `DEV_HEALTH_PATH` or its User-Agent is ALB's
(`ELB-HealthChecker/...`): it gets `DEV_HEALTH_STATUS` at once, never an injected error.
Every other answer is JSON naming the version, the pod and the port, with the headers
`X-Dev-Version` and `X-Dev-Pod`.

Termination, as a kubelet and a well-behaved app do it: at the pod's deletion timestamp its
preStop hook runs (`exec` of `sleep N`, or the `sleep` action), the pod still serving; then it
stops accepting connections and finishes what is in flight; then its IP:port refuses. Everything
is over by the pod's grace period (in-flight requests past it are cut). A pod the API server
forgets before then (kwok deletes pods quickly) still runs to the end of its own timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HEALTH_CHECKER = "ELB-HealthChecker/"
START_DELAY_ANNOTATION = "awsctl.io/dev-start-delay"
TABLE_WAIT_SECONDS = 20.0


def duration_seconds(text: str | None) -> float:
    """A Go-style duration as kwok reads it ("5s", "500ms", "1m30s"); 0 when absent or unreadable."""
    if not text:
        return 0.0
    total, units = 0.0, {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not parts:
        try:
            return max(0.0, float(text))
        except ValueError:
            return 0.0
    for number, unit in parts:
        total += float(number) * units[unit]
    return total


@dataclass(frozen=True)
class Behaviour:
    version: str
    error_rate: float = 0.0
    latency_ms: float = 0.0
    start_delay: float = 0.0
    health_path: str = "/healthz"
    health_status: int = 200
    reset_rate: float = 0.0

    @classmethod
    def of(cls, pod: Mapping[str, Any], container: Mapping[str, Any]) -> Behaviour:
        env = {e.get("name"): e.get("value") for e in container.get("env") or [] if "value" in e}
        image = str(container.get("image") or "")
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
        annotation = ((pod.get("metadata") or {}).get("annotations") or {}).get(START_DELAY_ANNOTATION)

        def number(name: str, default: float) -> float:
            try:
                return float(env.get(name) or default)
            except ValueError:
                return default

        return cls(
            version=str(env.get("DEV_VERSION") or tag),
            error_rate=min(1.0, max(0.0, number("DEV_ERROR_RATE", 0.0))),
            reset_rate=min(1.0, max(0.0, number("DEV_RESET_RATE", 0.0))),
            latency_ms=max(0.0, number("DEV_LATENCY_MS", 0.0)),
            start_delay=duration_seconds(annotation) or max(0.0, number("DEV_START_DELAY_SECONDS", 0.0)),
            health_path=str(env.get("DEV_HEALTH_PATH") or "/healthz"),
            health_status=int(number("DEV_HEALTH_STATUS", 200)),
        )


def prestop_seconds(container: Mapping[str, Any]) -> float:
    """The preStop hook's length: `sleep N` run by exec (directly or through a shell), or the sleep action."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in hook:
        return float((hook["sleep"] or {}).get("seconds") or 0)
    command = " ".join(str(c) for c in ((hook.get("exec") or {}).get("command") or []))
    found = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)", command)
    return float(found.group(1)) if found else 0.0


def _reset(request: web.Request) -> web.StreamResponse:
    """Closes the request's connection with a TCP RST (SO_LINGER 0), as a crashing process's kernel does:
    what an NLB counts as TCP_Target_Reset_Count. The answer returned is never written."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


@dataclass
class PodPort:
    """One pod's server on one port: its loopback site, and its place in the table."""

    namespace: str
    name: str
    ip: str
    port: int
    behaviour: Behaviour
    prestop: float
    grace: float
    runner: web.AppRunner | None = None
    local_port: int | None = None
    terminating: bool = False
    served: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def key(self) -> str:
        return f"{self.ip}:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        headers = {"X-Dev-Version": b.version, "X-Dev-Pod": f"{self.namespace}/{self.name}"}
        if request.path == b.health_path or request.headers.get("User-Agent", "").startswith(HEALTH_CHECKER):
            return web.Response(status=b.health_status, text="ok" if b.health_status < 400 else "unhealthy")
        self.served += 1
        if b.reset_rate and self.rng.random() < b.reset_rate:
            return _reset(request)
        if b.latency_ms:
            await asyncio.sleep(b.latency_ms / 1000)
        status = 500 if b.error_rate and self.rng.random() < b.error_rate else 200
        body = {
            "version": b.version,
            "pod": self.name,
            "namespace": self.namespace,
            "ip": self.ip,
            "port": self.port,
            "path": request.path,
            "error": status >= 500,
        }
        return web.json_response(body, status=status, headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self.grace)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        self.local_port = server.sockets[0].getsockname()[1] if server else None

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()  # stops listening, then waits for in-flight answers (up to grace)
            self.runner = None


class Pods:
    """Every pod port this process serves, and the table the data plane reads."""

    def __init__(self) -> None:
        self.ports: dict[str, PodPort] = {}  # podIP:port -> its server, while it listens
        self.version = 0
        self._changed = asyncio.Event()
        self._timelines: dict[str, asyncio.Task] = {}  # pod uid -> start or termination in progress
        self._pods: dict[str, set[str]] = {}  # pod uid -> its keys

    def table(self) -> dict[str, int]:
        return {key: p.local_port for key, p in self.ports.items() if p.local_port is not None}

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, since: int, timeout: float) -> None:
        if self.version != since:
            return
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    def observe(self, kind: str, pod: Mapping[str, Any]) -> None:
        """A pod event from the watch (ADDED, MODIFIED, DELETED)."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")
        status = pod.get("status") or {}
        if kind == "DELETED" or meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
            if uid in self._pods and not self._terminating(uid):
                self._run(uid, self._terminate(uid, pod))
            return
        ip = status.get("podIP")
        if not ip or status.get("phase") != "Running" or uid in self._pods:
            return
        servers = []
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if str(port.get("protocol") or "TCP") != "TCP":
                    continue
                servers.append(
                    PodPort(
                        namespace=str(meta.get("namespace")),
                        name=str(meta.get("name")),
                        ip=str(ip),
                        port=int(port["containerPort"]),
                        behaviour=Behaviour.of(pod, container),
                        prestop=prestop_seconds(container),
                        grace=float(
                            meta.get("deletionGracePeriodSeconds")
                            or (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
                            or 30
                        ),
                    )
                )
        if not servers:
            return
        self._pods[uid] = {s.key for s in servers}
        self._run(uid, self._start(uid, servers))

    def _terminating(self, uid: str) -> bool:
        return any(self.ports.get(k) is not None and self.ports[k].terminating for k in self._pods.get(uid, ()))

    def _run(self, uid: str, work) -> None:
        previous = self._timelines.get(uid)

        async def after():
            if previous is not None and not previous.done():
                await previous
            await work

        self._timelines[uid] = asyncio.ensure_future(after())

    async def _start(self, uid: str, servers: list[PodPort]) -> None:
        # kwok hands a deleted pod's IP to a new pod as soon as the old pod object is gone (after 1.5 s), while
        # the old pod still runs its preStop sleep here. A CNI frees an IP only when the pod's sandbox is gone
        # (and the VPC CNI then keeps it cooling down), so on a cluster the new pod never takes over the old
        # one's IP:port while it serves. Here the new pod waits for the old one's timeline to end: a load
        # balancer node that still sends the old target requests reaches the old pod, never the new one (it
        # once answered as the next revision at weight 0).
        keys = {s.key for s in servers}
        holders = [
            task
            for other, held in self._pods.items()
            if other != uid and held & keys
            for task in (self._timelines.get(other),)
            if task is not None and not task.done()
        ]
        if holders:
            await asyncio.gather(*holders, return_exceptions=True)
        delay = max(s.behaviour.start_delay for s in servers)
        if delay:
            await asyncio.sleep(delay)
        for server in servers:
            await server.start()
            self.ports[server.key] = server
        self._bump()

    async def _terminate(self, uid: str, pod: Mapping[str, Any]) -> None:
        servers = [self.ports[k] for k in self._pods.get(uid, ()) if k in self.ports]
        for server in servers:
            server.terminating = True
        if servers:
            meta = pod.get("metadata") or {}
            grace = float(meta.get("deletionGracePeriodSeconds") or servers[0].grace)
            started = time.monotonic()
            await asyncio.sleep(min(grace, max(s.prestop for s in servers)))  # preStop: still serving
            remaining = max(0.0, grace - (time.monotonic() - started))
            try:  # SIGTERM: no new connections, in-flight answers finish; the grace period's end kills
                await asyncio.wait_for(asyncio.gather(*(s.stop() for s in servers)), remaining)
            except TimeoutError:
                pass
            for server in servers:
                if self.ports.get(server.key) is server:  # a new pod may have the IP already (kwok reuses it)
                    del self.ports[server.key]
            self._bump()
        self._pods.pop(uid, None)

    async def close(self) -> None:
        for task in self._timelines.values():
            task.cancel()
        await asyncio.gather(*(p.stop() for p in list(self.ports.values())), return_exceptions=True)
        self.ports.clear()


def admin_app(pods: Pods) -> web.Application:
    async def table(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "-1"))
        except ValueError:
            since = -1
        await pods.wait_changed(since, min(float(request.query.get("wait", "0") or 0), TABLE_WAIT_SECONDS))
        return web.json_response({"version": pods.version, "targets": pods.table()})

    app = web.Application()
    app.router.add_get("/pods", table)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    return app


def _watch(kubeconfig: str, loop: asyncio.AbstractEventLoop, pods: Pods, stop: threading.Event) -> None:
    """Pod events from every namespace, handed to the loop; re-listed after any break."""
    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(kubeconfig)
    api = client.CoreV1Api(api_client)
    while not stop.is_set():
        try:
            listed = api.list_pod_for_all_namespaces()
            for item in listed.items:
                loop.call_soon_threadsafe(pods.observe, "ADDED", api_client.sanitize_for_serialization(item))
            stream = watch.Watch().stream(
                api.list_pod_for_all_namespaces,
                resource_version=listed.metadata.resource_version if listed.metadata else None,
                timeout_seconds=60,
            )
            for event in stream:
                if stop.is_set():
                    return
                obj = api_client.sanitize_for_serialization(event["object"])
                loop.call_soon_threadsafe(pods.observe, event["type"], obj)
        except Exception:  # noqa: BLE001 - the API server restarting or a watch expiring: list again
            time.sleep(1)


async def serve(kubeconfig: str, port: int) -> None:
    pods = Pods()
    runner = web.AppRunner(admin_app(pods), access_log=None, handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_watch, args=(kubeconfig, loop, pods, stop), daemon=True).start()
    try:
        await asyncio.Event().wait()
    finally:
        stop.set()
        await pods.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """`python -m awsctl.dev.pods --kubeconfig PATH --port N`: the pods of `awsctl dev`, answering."""
    parser = argparse.ArgumentParser(prog="python -m awsctl.dev.pods")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), required=False)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error("--kubeconfig (or KUBECONFIG) is required")
    try:
        asyncio.run(serve(args.kubeconfig, args.port))
    except KeyboardInterrupt:
        pass


class LocalPods:
    """Pods served from a thread of this process, fed pod objects directly: for tests and benchmarks
    that have a moto server but no cluster. `resolve` is the data plane's resolver."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pods: Pods | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.pods = Pods()
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="awsctl-local-pods")
        self._thread.start()
        ready.wait(5)

    def observe(self, kind: str, pod: Mapping[str, Any], wait: float = 5.0) -> None:
        """Hands the event over; for a new running pod, waits until it listens (its start delay aside)."""
        assert self.pods is not None
        before = self.pods.version
        self.loop.call_soon_threadsafe(self.pods.observe, kind, pod)
        status = pod.get("status") or {}
        if kind != "DELETED" and not (pod.get("metadata") or {}).get("deletionTimestamp") and status.get("podIP"):
            deadline = time.monotonic() + wait
            while self.pods.version == before and time.monotonic() < deadline:
                time.sleep(0.01)

    def resolve(self, ip: str, port: int) -> tuple[str, int] | None:
        server = self.pods.ports.get(f"{ip}:{port}") if self.pods else None
        return ("127.0.0.1", server.local_port) if server and server.local_port else None

    def close(self) -> None:
        if self.pods is not None:
            asyncio.run_coroutine_threadsafe(self.pods.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def pod(
    name: str,
    ip: str,
    *,
    port: int = 8080,
    image: str = "demo/web:v1",
    env: Mapping[str, str] | None = None,
    namespace: str = "default",
    prestop: float = 0.0,
    grace: float = 30.0,
) -> dict[str, Any]:
    """A running pod object as the API server shows it, for `LocalPods`."""
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "ports": [{"containerPort": port, "protocol": "TCP"}],
        "env": [{"name": k, "value": str(v)} for k, v in (env or {}).items()],
    }
    if prestop:
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(prestop)]}}}
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"{namespace}-{name}"},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": grace},
        "status": {"phase": "Running", "podIP": ip},
    }


class TableClient:
    """The data plane's copy of the pods table, kept by long-polling `GET /pods`."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.targets: dict[str, int] = {}
        self.version = -1
        self.ready = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._follow, daemon=True, name="awsctl-pods-table").start()

    def resolve(self, ip: str, port: int) -> tuple[str, int] | None:
        local = self.targets.get(f"{ip}:{port}")
        return ("127.0.0.1", local) if local else None

    def _follow(self) -> None:
        import urllib.request

        while not self._stop.is_set():
            try:
                url = f"{self.url}/pods?since={self.version}&wait={TABLE_WAIT_SECONDS}"
                with urllib.request.urlopen(url, timeout=TABLE_WAIT_SECONDS + 10) as answer:
                    body = json.loads(answer.read())
                self.targets = {str(k): int(v) for k, v in body["targets"].items()}
                self.version = int(body["version"])
                self.ready.set()
            except Exception:  # noqa: BLE001 - the pods process starting or gone: try again shortly
                time.sleep(0.5)

    def close(self) -> None:
        self._stop.set()


if __name__ == "__main__":
    main()
