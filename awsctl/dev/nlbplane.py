"""The data plane's Network Load Balancers: real TCP connections through the weights AWS shows.

`awsctl.dev.dataplane` hands this module every TCP and TLS listener of a moto Network Load Balancer (the
realism layer gives those their `net/` ARNs), and it serves each on a TCP port of 127.0.0.1 as NLB
documents it ("Listeners for your Network Load Balancers"; "Health checks for Network Load Balancer
target groups"; "CloudWatch metrics for your Network Load Balancer"):

- **One routing decision per connection.** A new connection lands on one of the load balancer's nodes,
  which routes it by the default action it has applied so far (the rule delays of
  `awsctl.dev.propagation`, as for ALB): a group in proportion to the weights, then a target of that
  group, round robin. "After you add a target group or update the weight of a target group, new
  connections are routed according to the new target group weights. Existing connections are not
  affected": bytes go both ways until either side closes, and a connection never moves.
- **Healthy targets, and fail-open.** A node routes to the targets it has applied the registration of
  and sees `healthy`; when every target of the group is `unhealthy` it fails open. A group with no
  target to route to (none, or `initial` and `draining` ones only) gets the connection reset by the
  load balancer (`TCP_ELB_Reset_Count`), as does a listener no node has a forward for yet.
- **Deregistration.** A node that has applied a deregistration sends the target no new connection. A
  connection still open when that node's deregistration delay ends is closed: connection termination
  on deregistration, the unkind side (with the attribute off, AWS may keep it until it idles out).
- **Health checks** by the group's own settings: a `TCP` check is a connection made within the
  timeout; `HTTP`/`HTTPS` checks go through the data plane's probes as for ALB.
- **CloudWatch metrics from the connections**, namespace `AWS/NetworkELB`, per LoadBalancer and per
  TargetGroup + LoadBalancer: `NewFlowCount` (connections sent to a target,
  a refused one too: the flow began at the load balancer), `ProcessedBytes`,
  `TCP_Target_Reset_Count` (the target refused or reset the connection), and per LoadBalancer
  `TCP_ELB_Reset_Count`; per TargetGroup + LoadBalancer, `HealthyHostCount` and `UnHealthyHostCount`.
  Published with the same lag as ALB's; a zero count is not published.
- **A record of every connection**: time, listener, group, target, pod, bytes, and how it ended.

Not reproduced: UDP (a UDP or TCP_UDP listener is not served), TLS termination (a TLS listener is
served as plain TCP), client IP preservation, proxy protocol, the 350 s idle timeout, and stickiness.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from awsctl.analysis.metrics import load_balancer_dimension, target_group_dimension
from awsctl.dev import albrules

if TYPE_CHECKING:
    from awsctl.dev.dataplane import DataPlane

NAMESPACE = "AWS/NetworkELB"
SERVED = ("TCP", "TLS")  # the listener protocols served (TLS as plain TCP)
CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024


@dataclass
class Flow:
    """One client connection through a listener."""

    time: float  # epoch seconds, when it arrived
    listener: str
    node: int
    group: str | None = None
    target: str | None = None  # ip:port
    pod: str | None = None
    sent: int = 0  # bytes client -> target
    received: int = 0  # bytes target -> client
    error: str | None = None  # reset by the load balancer, refused or reset by the target, or cut
    closed: float | None = None


@dataclass
class _TcpListener:
    arn: str
    lb_arn: str
    backend: Any
    server: asyncio.AbstractServer
    port: int
    nodes: int = 2


@dataclass
class _Open:
    """A connection to a target, for the deregistration cut."""

    group: Any
    key: str
    delay: float
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class NetworkListeners:
    """The NLB side of a DataPlane: it runs on the plane's loop, and routes with the plane's nodes, targets
    and health."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.listeners: dict[str, _TcpListener] = {}
        self.flows: list[Flow] = []
        self._rr: dict[str, itertools.count] = {}
        self._open: dict[int, _Open] = {}
        self._periods: dict[tuple, dict[str, float]] = defaultdict(dict)
        self._hosts_published = 0

    # -- listeners ---------------------------------------------------------------------------------
    def addresses(self) -> dict[str, tuple[str, int]]:
        """listener ARN -> where its connections go."""
        return {arn: ("127.0.0.1", lst.port) for arn, lst in list(self.listeners.items())}

    async def sync(self, found: dict[str, tuple[Any, Any, Any]]) -> None:
        """Opens a port for every NLB listener served, and closes the ports of listeners gone."""
        for arn in [a for a in self.listeners if a not in found]:
            gone = self.listeners.pop(arn)
            gone.server.close()
        for arn, (backend, lb, _) in found.items():
            if arn in self.listeners:
                continue
            server = await asyncio.start_server(functools.partial(self._connection, arn), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            zones = {getattr(subnet, "availability_zone", None) for subnet in getattr(lb, "subnets", None) or ()}
            nodes = self.plane.propagation.nodes(len(zones))
            self.listeners[arn] = _TcpListener(arn, lb.arn, backend, server, port, nodes)

    async def close(self) -> None:
        for listener in self.listeners.values():
            listener.server.close()
        for opened in list(self._open.values()):
            for writer in opened.writers:
                writer.close()
        self.listeners.clear()

    # -- one connection ------------------------------------------------------------------------------
    def _route(self, listener: _TcpListener, node: int) -> tuple[Any, Any] | str:
        """(group, registration) for a new connection on `node`, or why the load balancer resets it."""
        plane = self.plane
        raw = plane.layer.routes_at(
            listener.arn, plane.layer.clock() - plane.propagation.rule_delay(node, listener.nodes)
        )
        default = next((actions for priority, _, actions in raw or () if priority is None), None)
        forward = next((a for a in default or () if a.get("Type") == "forward"), None)
        if forward is None:
            return "no forward applied yet"
        chosen = albrules.pick_group(albrules.forward_of(forward), plane._rng.random)
        if chosen is None:
            return "no group with weight"
        delay = plane.propagation.target_delay(node, listener.nodes)
        with plane.layer.lock:
            group = listener.backend.target_groups.get(chosen)
            if group is None:
                return "group not found"
            states = plane._node_targets(group, delay)
        healthy = [reg for reg, state in states if state == "healthy"]
        failed_open = bool(states) and all(state == "unhealthy" for _, state in states)
        pool = healthy or ([reg for reg, _ in states] if failed_open else [])
        if not pool:
            return "no healthy targets (initial or draining only)" if states else "no targets"
        return group, pool[next(self._rr.setdefault(group.arn, itertools.count())) % len(pool)]

    async def _connection(self, arn: str, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        listener = self.listeners.get(arn)
        if listener is None:
            client.close()
            return
        node = self.plane._rng.randrange(listener.nodes)
        flow = Flow(time.time(), arn, node)
        self.flows.append(flow)
        routed = self._route(listener, node)
        if isinstance(routed, str):
            flow.error = f"reset by the load balancer: {routed}"
            self._reset(client)
            self._finish(listener, flow, established=False)
            return
        group, reg = routed
        flow.group, flow.target = group.arn, reg.key
        address = self.plane.resolve(reg.id, reg.port)
        try:
            if address is None:
                raise ConnectionRefusedError("no pod answers there")
            target_reader, target = await asyncio.wait_for(asyncio.open_connection(*address), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            flow.error = f"target refused: {type(err).__name__}"
            self._reset(client)
            self._finish(listener, flow, established=False)
            return
        delay = self.plane.propagation.target_delay(node, listener.nodes)
        opened = _Open(group, reg.key, delay, [client, target])
        self._open[id(opened)] = opened
        try:
            ended = await asyncio.gather(
                self._pipe(client_reader, target, flow, "sent"),
                self._pipe(target_reader, client, flow, "received"),
                return_exceptions=True,
            )
            if flow.error is None and any(isinstance(e, ConnectionResetError) for e in ended):
                flow.error = "reset by the target"
        finally:
            self._open.pop(id(opened), None)
            if flow.error == "reset by the target":
                self._reset(client)  # an NLB passes the target's RST on to the client
            for writer in (client, target):
                writer.close()
            self._finish(listener, flow, established=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flow: Flow, counter: str) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if counter == "received" and flow.pod is None:
                    flow.pod = _pod_of(chunk)
                setattr(flow, counter, getattr(flow, counter) + len(chunk))
                writer.write(chunk)
                await writer.drain()
        finally:
            if writer.can_write_eof() and not writer.is_closing():
                try:
                    writer.write_eof()
                except OSError:
                    pass

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        """Closes with a TCP RST (SO_LINGER 0), as NLB does to a connection it cannot route."""
        import socket
        import struct

        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.close()

    def cut_drained(self) -> None:
        """Closes connections to a target whose deregistration delay ended on the node that routed them."""
        for opened in list(self._open.values()):
            if self.plane._drained(opened.group, opened.key, opened.delay):
                self._open.pop(id(opened), None)
                for writer in opened.writers:
                    writer.close()
                for flow in self.flows[::-1]:
                    if flow.target == opened.key and flow.group == opened.group.arn and flow.closed is None:
                        flow.error = flow.error or "deregistration delay ended"

    # -- CloudWatch -----------------------------------------------------------------------------------
    def _finish(self, listener: _TcpListener, flow: Flow, established: bool) -> None:
        flow.closed = time.time()
        period = int(flow.time // 60 * 60)
        lb = load_balancer_dimension(listener.arn)
        keys: list[tuple[str, int, str, str | None]] = [(listener.lb_arn, period, lb, None)]
        if flow.group is not None:
            keys.append((listener.lb_arn, period, lb, target_group_dimension(flow.group)))
        if not established and flow.group is None:
            counts = self._periods[keys[0]]
            counts["TCP_ELB_Reset_Count"] = counts.get("TCP_ELB_Reset_Count", 0) + 1
            return
        for key in keys:
            counts = self._periods[key]
            counts["NewFlowCount"] = counts.get("NewFlowCount", 0) + 1
            if established:
                counts["ProcessedBytes"] = counts.get("ProcessedBytes", 0) + flow.sent + flow.received
            if not established or flow.error == "reset by the target":
                counts["TCP_Target_Reset_Count"] = counts.get("TCP_Target_Reset_Count", 0) + 1

    def publish_closed(self, now: float, lag: float) -> None:
        """Every period that ended `lag` before `now`, and the host counts of the last whole minute then."""
        for key in [k for k in list(self._periods) if k[1] + 60 <= now - lag]:
            lb_arn, period, lb, group = key
            dims = [{"Name": "LoadBalancer", "Value": lb}]
            if group is not None:
                dims = [{"Name": "TargetGroup", "Value": group}, *dims]
            stamp = dt.datetime.fromtimestamp(period, dt.UTC).replace(tzinfo=None)  # moto keeps naive UTC
            unit = {"ProcessedBytes": "Bytes"}
            data = [
                {
                    "MetricName": name,
                    "Dimensions": dims,
                    "Timestamp": stamp,
                    "Value": value,
                    "Unit": unit.get(name, "Count"),
                }
                for name, value in self._periods.pop(key).items()
                if value
            ]
            self.plane._put(lb_arn, data, NAMESPACE)
        minute = int((now - lag) // 60 * 60) - 60
        if minute > self._hosts_published:
            self._hosts_published = minute
            self._publish_hosts(minute)

    def _publish_hosts(self, period: int) -> None:
        stamp = dt.datetime.fromtimestamp(period, dt.UTC).replace(tzinfo=None)
        layer = self.plane.layer
        for listener in list(self.listeners.values()):
            data: list[dict] = []
            with layer.lock:
                raw = layer.routes_at(listener.arn, layer.clock()) or ()
                arns = {
                    arn
                    for priority, _, actions in raw
                    for action in actions
                    if action.get("Type") == "forward"
                    for arn, _ in albrules.forward_of(action).groups
                }
                for arn in arns:
                    group = listener.backend.target_groups.get(arn)
                    if group is not None:
                        data += self.plane.host_datapoints(group, load_balancer_dimension(listener.arn), stamp)
            self.plane._put(listener.lb_arn, data, NAMESPACE)


def _pod_of(chunk: bytes) -> str | None:
    """The pod that answered, from the X-Dev-Pod header of `awsctl.dev.pods` when the bytes are HTTP."""
    head = chunk.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-dev-pod":
            return value.strip().decode(errors="replace")
    return None
