"""A data plane for moto's Application Load Balancers: real requests through the weights AWS shows.

moto keeps an ALB's state and serves none of its traffic. This module runs inside the moto process,
beside the realism layer (`awsctl.dev.realism`), and gives every HTTP listener a real HTTP listener
on 127.0.0.1 that routes as ALB documents (a Network Load Balancer's TCP and TLS listeners get real
TCP listeners: `awsctl.dev.nlbplane`, on the same nodes, registrations and health checks):

- **Routing**: the listener's rules by priority, then its default action (`awsctl.dev.albrules`);
  `fixed-response` and `redirect` answered; `authenticate-oidc`/`authenticate-cognito` let a request
  with the rule's session cookie through, and otherwise answer as `OnUnauthenticatedRequest` says:
  `authenticate` (the default) redirects (302) to the identity provider's authorization endpoint,
  `deny` is 401, `allow` lets it through. No identity provider is contacted.
- **Nodes that apply changes late** (`awsctl.dev.propagation`): every request lands on one of the
  load balancer's nodes (one per enabled zone, at least two), and that node routes by the rules and
  the registrations it has applied so far, each node with a delay of its own. A node that has not
  applied a deregistration still sends the target new requests; once it has, the target drains
  there for the deregistration delay, and what is still in flight to it then is cut (502).
- **Weighted forward**: one group per request, in proportion to the weights; group stickiness with
  the `AWSALBTG` cookie; round robin over the group's `healthy` targets. AWS, "Health checks for
  Application Load Balancer target groups": "Each load balancer node routes requests only to the
  healthy targets", and "If a target group contains only unhealthy registered targets, the load
  balancer routes requests to all those targets" (fail-open). So `initial` targets get nothing; a
  group whose targets are all `unhealthy` fails open; a group with none, or with only `initial`
  or `draining` ones, answers 503. 502 when a target refuses or resets the connection; 504 when
  no connection is made within 10 s, or when an established connection stays idle for the load
  balancer's idle timeout (60 s by default), as ALB's troubleshooting guide describes both.
- **Health checks that probe**: each registered target of a group in use, every
  HealthCheckIntervalSeconds, on its path, port and timeout, judged by its matcher. The first check
  is one interval after the target enters the group (or the group is put in use). The results drive
  the realism layer's state machine (`Realism.record_probe`): `initial`, then `healthy` or
  `unhealthy` by the group's thresholds. `unused` stays as the layer decides it.
- **CloudWatch metrics from the traffic**, by ALB's definitions (namespace `AWS/ApplicationELB`,
  "CloudWatch metrics for your Application Load Balancer"): per TargetGroup + LoadBalancer and per
  LoadBalancer, `RequestCount` ("only incremented for requests where the load balancer node was
  able to choose a target"), `HTTPCode_Target_{2,3,4,5}XX_Count`, `TargetConnectionErrorCount`
  (connections "that were not successfully established": refused, or not made within 10 s; a reset
  after the connection is made is not one), `TargetResponseTime` (until the target "starts to send
  the response headers", every request's value so percentiles are real); per TargetGroup +
  LoadBalancer, `HealthyHostCount` and `UnHealthyHostCount`; per LoadBalancer only,
  `HTTPCode_ELB_{3,4,5}XX_Count` and `HTTPCode_ELB_{500,502,503,504}_Count` (what the load balancer
  answered itself), `HTTP_Fixed_Response_Count` and `HTTP_Redirect_Count`. A 60 s period is
  published the propagation setting's lag after it ends; like ALB, a count that is zero is not
  published.
- **A record of every request**: time, listener, status, group, target, version, pod, latency.

Targets are pods of `awsctl dev`: `resolve(ip, port)` gives the loopback address that answers for
them (`awsctl.dev.pods`), so nothing leaves 127.0.0.1. A target with no address refuses.
Not reproduced: health checks per node (one verdict for all nodes), HTTPS/TLS (an HTTPS listener is served as plain HTTP), HTTP/2 and gRPC, slow start,
the least-outstanding-requests algorithm, connection reuse to targets (one connection a request),
cross-zone routing choices, and WAF.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from awsctl.analysis.metrics import NAMESPACE, load_balancer_dimension, target_group_dimension
from awsctl.dev import albrules
from awsctl.dev.nlbplane import SERVED as NLB_SERVED
from awsctl.dev.nlbplane import NetworkListeners
from awsctl.dev.propagation import Propagation, from_env
from awsctl.dev.realism import REGISTERING, REGISTRATION_SECONDS, Realism

Resolver = Callable[[str, int], "tuple[str, int] | None"]

PERIOD = 60
HEALTH_CHECKER = "ELB-HealthChecker/2.0"
DEFAULT_IDLE_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0  # ALB: a 504 when "the load balancer failed to establish a connection ... (10 seconds)"
CONNECT_ERRORS = ("connection refused", "connection timeout")  # TargetConnectionErrorCount: never established
CUT = "deregistration delay ended"
AUTH_COOKIE = "AWSELBAuthSessionCookie"
_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "proxy-connection", "host"}


@dataclass
class Record:
    time: float  # epoch seconds, when the request arrived
    listener: str
    status: int
    latency: float  # seconds, as the client saw it
    group: str | None = None
    target: str | None = None  # ip:port
    version: str | None = None
    pod: str | None = None
    error: str | None = None  # why the load balancer answered itself (502, 503, 504, 401, ...)
    path: str = "/"
    node: int = 0  # the load-balancer node that routed it
    target_time: float | None = None  # TargetResponseTime: request sent -> response headers received


@dataclass
class _Listener:
    arn: str
    lb_arn: str
    backend: Any
    runner: web.AppRunner
    port: int
    nodes: int = 2


@dataclass
class _Decision:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    group: Any = None  # the FakeTargetGroup a forward chose
    target: str | None = None  # ip:port
    address: tuple[str, int] | None = None
    timeout: float = DEFAULT_IDLE_TIMEOUT
    error: str | None = None
    proxy: bool = False
    kind: str = "none"  # the answering action: forward, fixed-response, redirect, authenticate, none
    drain_delay: float = 0.0  # how late the routing node applies a deregistration of the chosen target


class DataPlane:
    def __init__(
        self,
        layer: Realism,
        resolve: Resolver,
        *,
        publish_metrics: bool = True,
        seed: int | None = None,
        sync_seconds: float = 0.25,
        admin_port: int | None = None,
        propagation: Propagation | None = None,
    ) -> None:
        self.propagation = propagation or from_env()
        self.admin_port = admin_port
        self.layer = layer
        self.resolve = resolve
        self.publish_metrics = publish_metrics
        self.sync_seconds = sync_seconds
        self.records: list[Record] = []
        self.listeners: dict[str, _Listener] = {}
        self._rng = random.Random(seed)
        self._rr: dict[str, itertools.count] = {}
        self._due: dict[tuple, float] = {}
        self._rules: dict[str, list[tuple[tuple, list[albrules.Rule]]]] = {}  # arn -> [(raw version, rules)]
        self._inflight: dict[asyncio.Future, tuple[Any, str, float]] = {}  # -> (group, target key, node's delay)
        self._periods: dict[tuple, dict[str, Any]] = defaultdict(dict)
        self._hosts_published = 0
        self._probes: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self.network = NetworkListeners(self)  # the NLB listeners (awsctl.dev.nlbplane)

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> DataPlane:
        self.layer.probing = True
        self.layer.registration_seconds = max(REGISTRATION_SECONDS, self.propagation.target_seconds[1])
        self._thread = threading.Thread(target=self._run, daemon=True, name="awsctl-dataplane")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the data plane did not start")
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(15)
        self.layer.probing = False
        self.layer.registration_seconds = REGISTRATION_SECONDS

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0), auto_decompress=False
        )
        admin = None
        if self.admin_port is not None:
            admin = web.AppRunner(admin_app(self), access_log=None, handle_signals=False)
            await admin.setup()
            await web.TCPSite(admin, "127.0.0.1", self.admin_port).start()
        self._ready.set()
        tasks = [asyncio.ensure_future(t) for t in (self._probe_loop(), self._metrics_loop())]
        try:
            while not self._stopped.is_set():
                await self._sync_listeners()
                await self.network.sync(self._moto_listeners(NLB_SERVED, "network"))
                await asyncio.sleep(self.sync_seconds)
        finally:
            tasks += list(self._probes)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for listener in list(self.listeners.values()):
                await listener.runner.cleanup()
            self.listeners.clear()
            await self.network.close()
            if admin is not None:
                await admin.cleanup()
            await self._session.close()

    def urls(self) -> dict[str, str]:
        """listener ARN -> the URL its traffic goes to."""
        return {arn: f"http://127.0.0.1:{lst.port}" for arn, lst in list(self.listeners.items())}

    def wait_listener(self, arn: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self.urls().get(arn)
            if url:
                return url
            time.sleep(0.05)
        raise TimeoutError(f"no data-plane listener for {arn} within {timeout}s")

    # -- moto's state, read under the realism layer's lock ---------------------------------------
    def _moto_listeners(
        self, protocols: tuple[str, ...] | None = ("HTTP", "HTTPS"), kind: str = "application"
    ) -> dict[str, tuple[Any, Any, Any]]:
        """listener ARN -> (backend, load balancer, listener), for the load balancers of `kind` and the
        listener `protocols` served (None: every listener of every load balancer)."""
        from moto.elbv2.models import elbv2_backends

        found = {}
        with self.layer.lock:
            for per_region in list(dict.values(elbv2_backends)):
                for backend in list(dict.values(per_region)):
                    for lb in list(backend.load_balancers.values()):
                        if protocols is not None and (getattr(lb, "type", None) or "application") != kind:
                            continue
                        for listener in list(lb.listeners.values()):
                            if protocols is None or str(listener.protocol).upper() in protocols:
                                found[listener.arn] = (backend, lb, listener)
        return found

    async def _sync_listeners(self) -> None:
        found = self._moto_listeners()
        for arn in [a for a in self.listeners if a not in found]:
            await self.listeners.pop(arn).runner.cleanup()
            self._rules.pop(arn, None)
        for arn, (backend, lb, _) in found.items():
            if arn in self.listeners:
                continue
            app = web.Application(client_max_size=16 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handler(arn))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            await web.SockSite(runner, sock).start()
            zones = {getattr(subnet, "availability_zone", None) for subnet in getattr(lb, "subnets", None) or ()}
            nodes = self.propagation.nodes(len(zones))
            self.listeners[arn] = _Listener(arn, lb.arn, backend, runner, sock.getsockname()[1], nodes)

    def _listener_rules(self, listener: _Listener, node: int) -> list[albrules.Rule] | None:
        """The listener's rules as `node` has applied them: the version the API showed its rule delay
        ago (None when it had none yet). Each version is turned into rules once."""
        delay = self.propagation.rule_delay(node, listener.nodes)
        raw = self.layer.routes_at(listener.arn, self.layer.clock() - delay)
        if raw is None:
            return None
        built = self._rules.setdefault(listener.arn, [])
        for version, rules in built:
            if version is raw:
                return rules
        rules = [albrules.Rule(priority, conditions, actions) for priority, conditions, actions in raw]
        built.append((raw, rules))
        del built[:-16]  # a node lags by a few versions at most
        return rules

    # -- one request ------------------------------------------------------------------------------
    def _handler(self, arn: str):
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(arn, request)

        return handle

    async def _serve(self, arn: str, request: web.Request) -> web.StreamResponse:
        arrived, started = time.time(), time.monotonic()
        listener = self.listeners.get(arn)
        if listener is None:
            return web.Response(status=503)
        req = albrules.Request(
            method=request.method,
            host=request.headers.get("Host", f"127.0.0.1:{listener.port}"),
            path=request.path,
            query=albrules.parse_query(request.query_string),
            headers={k.lower(): tuple(request.headers.getall(k)) for k in request.headers},
            source_ip=request.remote or "127.0.0.1",
            cookies=dict(request.cookies),
            port=listener.port,
        )
        node = self._rng.randrange(listener.nodes)
        decision = self._decide(listener, req, node)
        record = Record(arrived, arn, decision.status, 0.0, path=request.path, error=decision.error, node=node)
        if decision.group is not None:
            record.group = decision.group.arn
            record.target = decision.target
        response: web.StreamResponse
        if decision.proxy:
            response = await self._proxy(request, decision, record, listener)
        else:
            response = web.Response(status=decision.status, body=decision.body, headers=decision.headers)
        for name, value in decision.headers.items():
            if name.lower() == "set-cookie":
                response.headers.add("Set-Cookie", value)
        record.status = response.status
        record.latency = time.monotonic() - started
        self.records.append(record)
        self._count(listener, record, decision)
        return response

    def _decide(self, listener: _Listener, req: albrules.Request, node: int) -> _Decision:
        rules = self._listener_rules(listener, node)
        if rules is None:
            return _Decision(503, error="listener not applied yet")
        rule = albrules.select(rules, req)
        if rule is None:
            return _Decision(503, error="no rule")
        for action in albrules.ordered_actions(rule.actions):
            kind = action.get("Type")
            if kind in ("authenticate-oidc", "authenticate-cognito"):
                answered = self._authenticate(action, req)
                if answered is not None:
                    return answered
                continue
            if kind == "fixed-response":
                config = action.get("FixedResponseConfig") or {}
                return _Decision(
                    int(config.get("StatusCode") or 200),
                    {"Content-Type": str(config.get("ContentType") or "text/plain")},
                    str(config.get("MessageBody") or "").encode(),
                    kind="fixed-response",
                )
            if kind == "redirect":
                config = action.get("RedirectConfig") or {}
                return _Decision(
                    albrules.redirect_status(config),
                    {"Location": albrules.redirect_location(config, req)},
                    kind="redirect",
                )
            if kind == "forward":
                return self._forward(listener, albrules.forward_of(action), req, node)
        return _Decision(503, error="no terminal action")

    @staticmethod
    def _authenticate(action: Mapping[str, Any], req: albrules.Request) -> _Decision | None:
        config = action.get("AuthenticateOidcConfig") or action.get("AuthenticateCognitoConfig") or {}
        if req.cookies.get(str(config.get("SessionCookieName") or AUTH_COOKIE)):
            return None
        on_unauthenticated = str(config.get("OnUnauthenticatedRequest") or "authenticate")
        if on_unauthenticated == "allow":
            return None
        if on_unauthenticated == "deny":
            return _Decision(401, error="unauthenticated", kind="authenticate")
        endpoint = str(config.get("AuthorizationEndpoint") or "")
        if not endpoint and config.get("UserPoolDomain"):
            endpoint = f"https://{config['UserPoolDomain']}.auth.amazoncognito.com/oauth2/authorize"
        return _Decision(302, {"Location": endpoint or "/"}, error="authenticate", kind="authenticate")

    def _forward(self, listener: _Listener, forward: albrules.Forward, req: albrules.Request, node: int) -> _Decision:
        now = time.time()
        chosen = albrules.sticky_group(req.cookies.get(albrules.STICKY_COOKIE), forward, now)
        headers = {}
        if chosen is None:
            chosen = albrules.pick_group(forward, self._rng.random)
            if chosen is not None and forward.sticky_seconds is not None:
                value = albrules.sticky_value(chosen, now + forward.sticky_seconds)
                headers["Set-Cookie"] = f"{albrules.STICKY_COOKIE}={value}; Max-Age={forward.sticky_seconds}; Path=/"
        if chosen is None:
            return _Decision(503, error="no group with weight", kind="forward")
        delay = self.propagation.target_delay(node, listener.nodes)
        with self.layer.lock:
            group = listener.backend.target_groups.get(chosen)
            if group is None:
                return _Decision(503, error="group not found", kind="forward")
            states = self._node_targets(group, delay)
        healthy = [reg for reg, state in states if state == "healthy"]
        failed_open = bool(states) and all(state == "unhealthy" for _, state in states)
        pool = healthy or ([reg for reg, _ in states] if failed_open else [])
        if not pool:
            why = "no healthy targets (initial or draining only)" if states else "no targets"
            return _Decision(503, headers, group=group, error=why, kind="forward")
        reg = pool[next(self._rr.setdefault(group.arn, itertools.count())) % len(pool)]
        return _Decision(
            headers=headers,
            group=group,
            target=reg.key,
            address=self.resolve(reg.id, reg.port),
            timeout=self._idle_timeout(listener),
            proxy=True,
            kind="forward",
            drain_delay=delay,
        )

    def _node_targets(self, group: Any, delay: float) -> list[tuple[Any, str]]:
        """The group's targets as a node `delay` seconds behind the API routes to them, with the state it
        routes by: registrations older than `delay`, and deregistrations younger than it, which that
        node has not applied yet (at the state the target had). Draining ones it has applied are left
        out: they get no new request. Call under the layer's lock."""
        st = self.layer.state(group)
        now = self.layer.clock()
        out = []
        for key, reg in st.targets.items():
            if reg.registered_at + delay > now:
                continue  # not applied by this node yet
            state = self.layer.health(group, reg, now)[0]
            if state == "unused":  # the API shows no rule using the group; a late node may: as it last was
                state = st.last_states.get(key, state)
            out.append((reg, state))
        out += [(gone.target, gone.state) for gone in st.departed.values() if now < gone.at + delay]
        return out

    def _drained(self, group: Any, key: str, delay: float) -> bool:
        """Whether a node `delay` behind has drained `key` for the whole deregistration delay."""
        with self.layer.lock:
            st = self.layer.state(group)
            gone = st.departed.get(key)
            return key not in st.targets and gone is not None and self.layer.clock() >= gone.at + delay + gone.delay

    def _idle_timeout(self, listener: _Listener) -> float:
        lb = listener.backend.load_balancers.get(listener.lb_arn)
        attrs = getattr(lb, "attrs", None) or {}
        try:
            return float(attrs.get("idle_timeout.timeout_seconds") or DEFAULT_IDLE_TIMEOUT)
        except (TypeError, ValueError):
            return DEFAULT_IDLE_TIMEOUT

    async def _proxy(
        self, request: web.Request, decision: _Decision, record: Record, listener: _Listener
    ) -> web.StreamResponse:
        if decision.address is None:
            decision.error = record.error = "connection refused"
            return web.Response(status=502, text="502 Bad Gateway")
        body = await request.read()
        upstream = asyncio.ensure_future(self._upstream(request, body, decision, record, listener))
        self._inflight[upstream] = (decision.group, str(decision.target), decision.drain_delay)
        try:
            await asyncio.wait({upstream})
        finally:
            self._inflight.pop(upstream, None)
            if not upstream.done():
                upstream.cancel()  # the client went away
        if upstream.cancelled():  # the node's deregistration delay ended with the request in flight
            decision.error = record.error = CUT
            return web.Response(status=502, text="502 Bad Gateway")
        return upstream.result()

    async def _upstream(
        self, request: web.Request, body: bytes, decision: _Decision, record: Record, listener: _Listener
    ) -> web.StreamResponse:
        assert self._session is not None and decision.address is not None
        host, port = decision.address
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        forwarded = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded}, {request.remote}" if forwarded else str(request.remote)
        headers["X-Forwarded-Proto"] = "http"
        headers["X-Forwarded-Port"] = str(listener.port)
        headers["Host"] = request.headers.get("Host", f"127.0.0.1:{listener.port}")
        url = f"http://{host}:{port}{request.rel_url}"
        # ALB: 10 s to connect, then the idle timeout between bytes (not a total)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=decision.timeout)
        sent = time.monotonic()
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False, timeout=timeout
            ) as answer:
                record.target_time = time.monotonic() - sent  # the response headers are in
                payload = await answer.read()
                record.version = answer.headers.get("X-Dev-Version")
                record.pod = answer.headers.get("X-Dev-Pod")
                out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP | {"content-length"}}
                return web.Response(status=answer.status, body=payload, headers=out)
        except aiohttp.ServerTimeoutError as err:
            record.target_time = None
            connecting = isinstance(err, aiohttp.ConnectionTimeoutError)
            decision.error = record.error = "connection timeout" if connecting else "target timeout"
            return web.Response(status=504, text="504 Gateway Time-out")
        except aiohttp.ClientConnectorError:
            decision.error = record.error = "connection refused"
            return web.Response(status=502, text="502 Bad Gateway")
        except (aiohttp.ClientError, OSError) as err:
            record.target_time = None  # the answer never came whole: counted as the load balancer's 502
            decision.error = record.error = f"connection reset ({type(err).__name__})"
            return web.Response(status=502, text="502 Bad Gateway")

    def _cut_drained(self) -> None:
        """Cuts requests still in flight to a target whose deregistration delay ended on their node."""
        for task, (group, key, delay) in list(self._inflight.items()):
            if not task.done() and self._drained(group, key, delay):
                task.cancel()

    # -- health checks ------------------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        while True:
            now = time.monotonic()
            jobs = []
            seen = set()
            backends = {id(entry[0]): entry[0] for entry in self._moto_listeners(None).values()}
            for backend in backends.values():
                with self.layer.lock:
                    for group in list(backend.target_groups.values()):
                        st = self.layer.state(group)
                        if st.in_use_since is None or not getattr(group, "health_check_enabled", True):
                            continue
                        interval = float(group.health_check_interval_seconds or 30)
                        clock = self.layer.clock()
                        for key, reg in list(st.targets.items()):
                            state, reason, _ = self.layer.health(group, reg, clock)
                            if state == "unused" or reason == REGISTERING[0]:
                                continue  # checks start once every node has the registration
                            due_key = (group.arn, key, reg.registered_at, st.in_use_since)
                            if due_key in seen:
                                continue
                            seen.add(due_key)
                            due = self._due.setdefault(due_key, now + interval)
                            if due <= now:
                                self._due[due_key] = now + interval
                                jobs.append((group, reg))
            for stale in [k for k in self._due if k not in seen]:
                del self._due[stale]
            for group, reg in jobs:
                task = asyncio.ensure_future(self._probe(group, reg))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)
            self._cut_drained()
            self.network.cut_drained()
            await asyncio.sleep(0.1)

    async def _probe(self, group: Any, reg: Any) -> None:
        assert self._session is not None
        port = group.health_check_port
        port = reg.port if port in (None, "", "traffic-port") else int(port)
        address = self.resolve(reg.id, port)
        timeout = float(group.health_check_timeout_seconds or 5)
        path = group.health_check_path or "/"
        reason: tuple[str, str] | None = None
        if address is None:
            reason = ("Target.FailedHealthChecks", "Health checks failed")
        elif str(getattr(group, "health_check_protocol", None) or "HTTP").upper() == "TCP":
            reason = await _tcp_check(address, timeout)  # NLB's TCP check: a connection made in time
        else:
            try:
                async with self._session.get(
                    f"http://{address[0]}:{address[1]}{path}",
                    headers={"User-Agent": HEALTH_CHECKER, "Host": f"{reg.id}:{port}"},
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as answer:
                    await answer.read()
                    if not albrules.matcher_accepts(getattr(group, "matcher", None), answer.status):
                        reason = (
                            "Target.ResponseCodeMismatch",
                            f"Health checks failed with these codes: [{answer.status}]",
                        )
            except TimeoutError:
                reason = ("Target.Timeout", "Request timed out")
            except (aiohttp.ClientError, OSError):
                reason = ("Target.FailedHealthChecks", "Health checks failed")
        self.layer.record_probe(group, reg.key, reason is None, reason)

    # -- CloudWatch ---------------------------------------------------------------------------------
    def _count(self, listener: _Listener, record: Record, decision: _Decision) -> None:
        for key, name, value in metric_counts(listener.lb_arn, record, decision):
            counts = self._periods[key]
            if name == "TargetResponseTime":
                counts.setdefault(name, []).append(value)
            else:
                counts[name] = counts.get(name, 0) + value

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.publish_metrics:  # off the loop: a busy minute is thousands of datapoints for moto
                await asyncio.get_running_loop().run_in_executor(None, self.publish_closed, time.time())

    def publish_closed(self, now: float) -> None:
        """Publishes every period that ended the metrics lag before `now`, and the host counts of the
        last whole minute then; a test passes a later `now` rather than wait for the minute."""
        lag = self.propagation.metrics_lag_seconds
        for key in [k for k in list(self._periods) if k[1] + PERIOD <= now - lag]:
            self._publish(key, self._periods.pop(key))
        minute = int((now - lag) // PERIOD * PERIOD) - PERIOD
        if minute > self._hosts_published:
            self._hosts_published = minute
            self._publish_hosts(minute)
        self.network.publish_closed(now, lag)

    def _publish(self, key: tuple, counts: dict[str, Any]) -> None:
        lb_arn, period, lb, group = key
        dims = [{"Name": "LoadBalancer", "Value": lb}]
        if group is not None:
            dims = [{"Name": "TargetGroup", "Value": group}] + dims
        stamp = dt.datetime.fromtimestamp(period, dt.UTC).replace(tzinfo=None)  # moto keeps naive UTC
        data = []
        for name, value in counts.items():
            if name == "TargetResponseTime":
                data.append(
                    {"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Values": value, "Unit": "Seconds"}
                )
            elif value:
                data.append(
                    {"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": value, "Unit": "Count"}
                )
        self._put(lb_arn, data)

    def _publish_hosts(self, period: int) -> None:
        stamp = dt.datetime.fromtimestamp(period, dt.UTC).replace(tzinfo=None)  # moto keeps naive UTC
        by_lb: dict[str, list[dict]] = defaultdict(list)
        for _, (backend, lb, listener) in self._moto_listeners().items():
            with self.layer.lock:
                arns = {
                    arn
                    for rule in list(listener.rules.values())
                    for action in rule.actions
                    for arn in backend._get_target_group_arns_from(action_data=action.data)
                }
                for arn in arns:
                    group = backend.target_groups.get(arn)
                    if group is not None:
                        by_lb[lb.arn] += self.host_datapoints(group, load_balancer_dimension(lb.arn), stamp)
        for lb_arn, data in by_lb.items():
            self._put(lb_arn, data)

    def host_datapoints(self, group: Any, lb_dimension: str, stamp: dt.datetime) -> list[dict]:
        """HealthyHostCount and UnHealthyHostCount of a group for one load balancer, at `stamp`. Call
        under the layer's lock."""
        clock = self.layer.clock()
        states = [self.layer.health(group, reg, clock)[0] for reg in self.layer.state(group).targets.values()]
        dims = [
            {"Name": "TargetGroup", "Value": target_group_dimension(group.arn)},
            {"Name": "LoadBalancer", "Value": lb_dimension},
        ]
        return [
            {"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": count, "Unit": "Count"}
            for name, count in (
                ("HealthyHostCount", states.count("healthy")),
                ("UnHealthyHostCount", states.count("unhealthy")),
            )
        ]

    @staticmethod
    def _put(lb_arn: str, data: list[dict], namespace: str = NAMESPACE) -> None:
        if not data:
            return
        from moto.cloudwatch.models import cloudwatch_backends

        _, _, _, region, account, _ = lb_arn.split(":", 5)
        cloudwatch_backends[account][region].put_metric_data(namespace, data)

    def records_since(self, index: int) -> list[dict]:
        return [asdict(r) for r in self.records[index:]]


async def _tcp_check(address: tuple[str, int], timeout: float) -> tuple[str, str] | None:
    """A TCP health check: None when a connection is made within the timeout, else why not."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
    except TimeoutError:
        return ("Target.Timeout", "Request timed out")
    except OSError:
        return ("Target.FailedHealthChecks", "Health checks failed")
    writer.close()
    return None


def metric_counts(lb_arn: str, record: Record, decision: _Decision) -> list[tuple[tuple, str, float]]:
    """What one request adds to CloudWatch, as (period key, metric, value), by ALB's definitions: a
    request the node chose a target for counts in RequestCount, for the load balancer and the group;
    the target's answer in HTTPCode_Target_*XX and TargetResponseTime; a connection never made in
    TargetConnectionErrorCount; what the load balancer answered itself in HTTPCode_ELB_*, the
    fixed-response and redirect counts, per load balancer only."""
    period = int(record.time // PERIOD * PERIOD)
    lb = load_balancer_dimension(lb_arn)
    whole: tuple[str, int, str, str | None] = (lb_arn, period, lb, None)
    keys = [whole]
    chosen = decision.proxy  # a target was chosen
    if chosen and record.group is not None:
        keys.append((lb_arn, period, lb, target_group_dimension(record.group)))
    out: list[tuple[tuple, str, float]] = []
    answered = chosen and record.error is None
    for key in keys if chosen else ():
        out.append((key, "RequestCount", 1))
        if answered:
            out.append((key, f"HTTPCode_Target_{record.status // 100}XX_Count", 1))
            if record.target_time is not None:
                out.append((key, "TargetResponseTime", record.target_time))
        elif record.error in CONNECT_ERRORS:
            out.append((key, "TargetConnectionErrorCount", 1))
    if answered:
        return out
    if decision.kind == "fixed-response":
        out.append((whole, "HTTP_Fixed_Response_Count", 1))
    elif decision.kind == "redirect":
        out += [(whole, "HTTP_Redirect_Count", 1), (whole, "HTTPCode_ELB_3XX_Count", 1)]
    elif 300 <= record.status < 600:
        out.append((whole, f"HTTPCode_ELB_{record.status // 100}XX_Count", 1))
        if record.status in (500, 502, 503, 504):
            out.append((whole, f"HTTPCode_ELB_{record.status}_Count", 1))
    return out


def admin_app(plane: DataPlane) -> web.Application:
    """`GET /listeners` (ARN, load balancer, URL: http:// for ALB, tcp:// for NLB) and
    `GET /requests?since=N` (the record)."""

    async def listeners(_: web.Request) -> web.Response:
        return web.json_response(
            [
                {"listenerArn": arn, "loadBalancerArn": lst.lb_arn, "url": f"http://127.0.0.1:{lst.port}"}
                for arn, lst in list(plane.listeners.items())
            ]
            + [  # NLB listeners: connections, not requests
                {"listenerArn": arn, "loadBalancerArn": lst.lb_arn, "url": f"tcp://127.0.0.1:{lst.port}"}
                for arn, lst in list(plane.network.listeners.items())
            ]
        )

    async def requests(request: web.Request) -> web.Response:
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            since = 0
        return web.json_response({"next": len(plane.records), "requests": plane.records_since(since)})

    app = web.Application()
    app.router.add_get("/listeners", listeners)
    app.router.add_get("/requests", requests)
    return app
