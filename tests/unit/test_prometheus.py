"""/metrics: the series a Canary's status maps to, series that go with what they describe, and a
dashboard that only asks for series awsctl exports."""

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest

from awsctl import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "awsctl" / "dashboards" / "awsctl.json"


def sample(series, **labels):
    return REGISTRY.get_sample_value(series, labels)


def test_a_canary_status_becomes_its_series_and_they_go_with_it():
    status = {
        "phase": "Progressing",
        "canaryWeight": 12.5,
        "failedChecks": 1,
        "metrics": [{"name": "error-rate", "value": 0.4}, {"name": "latency", "value": None}],
    }
    metrics.canary_observed("shop", "cart", status, 0.2)
    assert sample("awsctl_canary_weight", name="cart", namespace="shop") == 12.5
    assert sample("awsctl_canary_status", name="cart", namespace="shop") == 0
    assert sample("awsctl_canary_phase", name="cart", namespace="shop", phase="Progressing") == 1
    assert sample("awsctl_canary_metric_analysis", name="cart", namespace="shop", metric="error-rate") == 0.4
    assert sample("awsctl_canary_metric_analysis", name="cart", namespace="shop", metric="latency") is None
    assert sample("awsctl_canary_total", namespace="shop") == 1
    metrics.canary_observed("shop", "cart", {"phase": "Failed", "canaryWeight": 0}, 0.1)
    assert sample("awsctl_canary_status", name="cart", namespace="shop") == 2
    assert sample("awsctl_canary_phase", name="cart", namespace="shop", phase="Progressing") is None
    assert sample("awsctl_canary_metric_analysis", name="cart", namespace="shop", metric="error-rate") is None
    metrics.canary_removed("shop", "cart")
    assert sample("awsctl_canary_weight", name="cart", namespace="shop") is None
    assert sample("awsctl_canary_phase", name="cart", namespace="shop", phase="Failed") is None
    assert sample("awsctl_canary_total", namespace="shop") == 0


def test_target_health_states_drop_to_zero_and_go_with_the_group():
    metrics.health_observed("shop-cart-p", {"initial": 2})
    metrics.health_observed("shop-cart-p", {"healthy": 2})
    assert sample("awsctl_target_health", target_group="shop-cart-p", state="healthy") == 2
    assert sample("awsctl_target_health", target_group="shop-cart-p", state="initial") == 0
    metrics.health_removed("shop-cart-p")
    assert sample("awsctl_target_health", target_group="shop-cart-p", state="healthy") is None


def test_the_dashboard_asks_only_for_series_awsctl_exports():
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", generate_latest(REGISTRY).decode(), re.M))
    names = (
        {n for n, _ in exported}
        | {f"{n}_{s}" for n, kind in exported if kind == "histogram" for s in ("bucket", "sum", "count")}
        | {f"{n}_total" for n, kind in exported if kind == "counter"}
    )
    dashboard = json.loads(DASHBOARD.read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(awsctl_\w+|process_\w+)", target["expr"])
    }
    assert asked and asked <= names, asked - names
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_metrics_listen_on_the_bind_address_only():
    """`--metrics-bind-address 127.0.0.1` (behind kube-rbac-proxy): nothing listens on other interfaces."""
    import socket
    import urllib.request

    from awsctl import metrics as served

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = served.serve(port, "127.0.0.1")
    try:
        assert server.server_address[:2] == ("127.0.0.1", port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()
