"""Pods that answer (`awsctl dev`): their contract read from the spec, and termination as a kubelet runs it."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from awsctl.dev.load import Response, summarize
from awsctl.dev.pods import Behaviour, LocalPods, duration_seconds, pod, prestop_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2", 2.0), ("", 0.0), (None, 0.0), ("soon", 0.0)],
)
def test_a_start_delay_reads_as_kwok_reads_it(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize(
    ("container", "annotations", "expected"),
    [
        ({"image": "demo/web:v2"}, {}, Behaviour("v2")),
        ({"image": "registry:5000/web"}, {}, Behaviour("latest")),  # a registry port is not a tag
        (
            {
                "image": "web:v3",
                "env": [
                    {"name": "DEV_VERSION", "value": "v3-broken"},
                    {"name": "DEV_ERROR_RATE", "value": "0.3"},
                    {"name": "DEV_LATENCY_MS", "value": "20"},
                    {"name": "DEV_HEALTH_PATH", "value": "/ready"},
                    {"name": "DEV_HEALTH_STATUS", "value": "503"},
                    {"name": "DEV_START_DELAY_SECONDS", "value": "2"},
                ],
            },
            {},
            Behaviour("v3-broken", 0.3, 20.0, 2.0, "/ready", 503),
        ),
        ({"image": "web:v1", "env": [{"name": "DEV_ERROR_RATE", "value": "7"}]}, {}, Behaviour("v1", error_rate=1.0)),
        ({"image": "web:v1", "env": [{"name": "DEV_RESET_RATE", "value": "0.3"}]}, {}, Behaviour("v1", reset_rate=0.3)),
        ({"image": "web:v1"}, {"awsctl.io/dev-start-delay": "3s"}, Behaviour("v1", start_delay=3.0)),
    ],
)
def test_a_pod_behaves_as_its_spec_says(container, annotations, expected):
    assert Behaviour.of({"metadata": {"annotations": annotations}}, container) == expected


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        (None, 0.0),
        ({"exec": {"command": ["sleep", "15"]}}, 15.0),
        ({"exec": {"command": ["/bin/sh", "-c", "sleep 5 && echo bye"]}}, 5.0),
        ({"sleep": {"seconds": 7}}, 7.0),
        ({"httpGet": {"path": "/stop", "port": 8080}}, 0.0),
    ],
)
def test_the_prestop_hook_length(hook, seconds):
    assert prestop_seconds({"lifecycle": {"preStop": hook}} if hook else {}) == seconds


def refused(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def fetch(address: tuple[str, int], path: str = "/") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address[0]}:{address[1]}{path}", timeout=10) as answer:
            return answer.status, answer.headers["X-Dev-Version"]
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("X-Dev-Version")


def test_a_terminating_pod_serves_through_prestop_finishes_in_flight_then_refuses():
    pods = LocalPods()
    try:
        spec = pod("web-0", "10.244.0.5", image="web:v1", env={"DEV_LATENCY_MS": "800"}, prestop=2.0, grace=10)
        pods.observe("ADDED", spec)
        address = pods.resolve("10.244.0.5", 8080)
        assert address is not None and pods.resolve("10.244.0.5", 9090) is None
        assert fetch(address, "/healthz") == (200, None)  # health checks get no latency and no error

        deleting = {**spec, "metadata": {**spec["metadata"], "deletionTimestamp": "2026-12-03T00:00:00Z"}}
        started = time.monotonic()
        pods.observe("MODIFIED", deleting)
        during_prestop = fetch(address)  # 0.8 s: well within the 2 s preStop sleep
        results = []
        late = threading.Thread(target=lambda: results.append(fetch(address)))
        time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
        late.start()  # sent at ~1.5 s, answered at ~2.3 s: after SIGTERM, still finished
        late.join(10)
        assert during_prestop == (200, "v1")
        assert results == [(200, "v1")]
        deadline = time.monotonic() + 5  # the port closes first, then the pod leaves the table
        while (not refused(address) or pods.resolve("10.244.0.5", 8080)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refused(address)
        assert pods.resolve("10.244.0.5", 8080) is None
    finally:
        pods.close()


def test_errors_are_injected_at_the_configured_rate_and_a_start_delay_holds_the_port():
    pods = LocalPods()
    try:
        pods.observe("ADDED", pod("bad-0", "10.244.0.6", image="web:v3", env={"DEV_ERROR_RATE": "0.3"}))
        address = pods.resolve("10.244.0.6", 8080)
        statuses = [fetch(address)[0] for _ in range(400)]
        assert 0.3 - 0.1 < statuses.count(500) / 400 < 0.3 + 0.1

        pods.observe("ADDED", pod("slow-0", "10.244.0.7", env={"DEV_START_DELAY_SECONDS": "1"}), wait=0)
        assert pods.resolve("10.244.0.7", 8080) is None  # not listening yet
        time.sleep(1.5)
        assert pods.resolve("10.244.0.7", 8080) is not None
    finally:
        pods.close()


def test_resets_are_injected_at_the_configured_rate_as_a_tcp_rst():
    pods = LocalPods()
    try:
        pods.observe("ADDED", pod("rst-0", "10.244.0.8", image="web:v3", env={"DEV_RESET_RATE": "0.3"}))
        address = pods.resolve("10.244.0.8", 8080)
        reset = 0
        for _ in range(300):
            try:
                fetch(address)
            except ConnectionResetError:
                reset += 1
        assert 0.3 - 0.1 < reset / 300 < 0.3 + 0.1
        assert fetch(address, "/healthz") == (200, None)  # health checks are never reset
    finally:
        pods.close()


def test_the_load_summary():
    responses = [Response(0.1, 200, 0.010, "v1"), Response(0.5, 200, 0.020, "v2"), Response(1.2, 502, 0.001)]
    responses += [Response(1.5, 200, 0.030, "v1"), Response(1.7, 0, 0.0, error="ClientConnectorError")]
    summary = summarize(responses, window=1.0, duration=2.0)
    assert (summary.requests, summary.failures, summary.rate) == (5, 2, 2.5)
    assert summary.statuses == {"200": 3, "502": 1, "0": 1}
    assert summary.share == [
        {"start": 0.0, "versions": {"v1": 0.5, "v2": 0.5}},
        {"start": 1.0, "versions": {"v1": 1.0}},
    ]
    assert summary.latency_ms["p50"] == 10.0 and summary.latency_ms["max"] == 30.0


def test_a_new_pod_on_a_terminating_pods_ip_keeps_its_place_in_the_table():
    """kwok gives a deleted pod's IP to a new pod while the old one may still be in its preStop sleep."""
    pods = LocalPods()
    try:
        old = pod("old", "10.244.0.9", image="web:v1", prestop=1.5)
        pods.observe("ADDED", old)
        pods.observe("MODIFIED", {**old, "metadata": {**old["metadata"], "deletionTimestamp": "2026-12-03T00:00:00Z"}})
        pods.observe("ADDED", pod("new", "10.244.0.9", image="web:v2"), wait=0)
        # Until the old pod has stopped, its IP:port is still the old pod's: a late load balancer node that
        # still sends it requests never reaches the new pod (a CNI never gives out an IP a sandbox holds).
        time.sleep(0.5)  # long enough for a new pod to start; the old one's preStop has a second to go
        during = pods.resolve("10.244.0.9", 8080)
        assert during is not None and fetch(during) == (200, "v1")
        time.sleep(2.0)  # the old pod's preStop is over and it has stopped
        address = pods.resolve("10.244.0.9", 8080)
        assert address is not None and fetch(address) == (200, "v2")
    finally:
        pods.close()
