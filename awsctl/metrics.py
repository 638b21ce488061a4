"""Prometheus metrics on /metrics (`awsctl run --metrics-port`).

The canary series carry Flagger's names with awsctl's prefix, so Flagger dashboards and alerts port
over by renaming; the rest is what only awsctl can see: every AWS call and its outcome, how long a
changed endpoint takes to reach its target group, how long a weight takes until AWS shows it, and
target health as AWS reports it. The process's own series (RSS, CPU, open fds) come with the client.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

from awsctl.api.phases import Phase

# Flagger: 0 running, 1 successful, 2 failed (a waiting or paused rollout is still running).
STATUS_OF_PHASE = {Phase.INITIALIZED: 1, Phase.SUCCEEDED: 1, Phase.FAILED: 2}
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)

canary_weight = Gauge("awsctl_canary_weight", "Canary weight in percent, as read back from AWS.", ["name", "namespace"])
canary_status = Gauge(
    "awsctl_canary_status", "Rollout status: 0 running, 1 successful, 2 failed.", ["name", "namespace"]
)
canary_phase = Gauge("awsctl_canary_phase", "1 for the Canary's current phase.", ["name", "namespace", "phase"])
canary_duration = Histogram(
    "awsctl_canary_duration_seconds",
    "Seconds one Canary tick took (observe, analyse, apply, verify).",
    ["name", "namespace"],
    buckets=LATENCY_BUCKETS,
)
canary_total = Gauge("awsctl_canary_total", "Canaries this operator runs.", ["namespace"])
canary_metric_analysis = Gauge(
    "awsctl_canary_metric_analysis", "Last value of each analysis metric.", ["name", "namespace", "metric"]
)
canary_failed_checks = Gauge(
    "awsctl_canary_failed_checks", "Failed checks of the current analysis.", ["name", "namespace"]
)
aws_calls = Counter(
    "awsctl_aws_api_calls_total", "AWS API calls (each HTTP attempt) by outcome.", ["service", "action", "outcome"]
)
target_registration = Histogram(
    "awsctl_target_registration_seconds",
    "Endpoint change seen -> target registered or deregistered (the write accepted by AWS).",
    buckets=LATENCY_BUCKETS,
)
weight_verification = Histogram(
    "awsctl_weight_verification_seconds",
    "Weight decided -> AWS shows it on the listener (written and read back).",
    buckets=LATENCY_BUCKETS,
)
target_health = Gauge(
    "awsctl_target_health", "Targets a binding wants, by target group and AWS health state.", ["target_group", "state"]
)
reconcile_errors = Counter("awsctl_reconcile_errors_total", "Reconciles that failed and will be retried.", ["kind"])
kubernetes_calls = Counter(
    "awsctl_kubernetes_api_calls_total", "Kubernetes API calls made by awsctl's own client, by verb.", ["verb"]
)
active_replica = Gauge("awsctl_active_replica", "1 while this replica may write (the active one, or standalone).")
fenced_writes = Counter(
    "awsctl_fenced_writes_total", "AWS and Kubernetes writes refused because another replica is the active one."
)

_lock = threading.Lock()
_canaries: dict[str, set[str]] = {}  # namespace -> names
_phases: dict[tuple[str, str], str] = {}
_metric_names: dict[tuple[str, str], set[str]] = {}
_health_states: dict[str, set[str]] = {}


def serve(port: int, host: str = "0.0.0.0"):
    """A daemon thread serving /metrics on `host` (every interface by default, as the LBC's
    --metrics-bind-addr; 127.0.0.1 behind kube-rbac-proxy); returns the server, nothing to stop."""
    server, _ = start_http_server(port, addr=host, registry=REGISTRY)
    return server


def canary_observed(namespace: str, name: str, status: Mapping | None, seconds: float) -> None:
    """After each tick: the Canary's series from the status that tick wrote."""
    status = status or {}
    phase = status.get("phase") or Phase.INITIALIZING
    canary_duration.labels(name, namespace).observe(seconds)
    canary_weight.labels(name, namespace).set(float(status.get("canaryWeight") or 0))
    canary_status.labels(name, namespace).set(STATUS_OF_PHASE.get(phase, 0))
    canary_failed_checks.labels(name, namespace).set(int(status.get("failedChecks") or 0))
    values = {m["name"]: m["value"] for m in status.get("metrics") or () if m.get("value") is not None}
    key = (namespace, name)
    with _lock:
        names = _canaries.setdefault(namespace, set())
        names.add(name)
        canary_total.labels(namespace).set(len(names))
        before = _phases.get(key)
        if before != phase:
            if before is not None:
                canary_phase.remove(name, namespace, before)
            _phases[key] = phase
        for gone in _metric_names.get(key, set()) - set(values):
            canary_metric_analysis.remove(name, namespace, gone)
        _metric_names[key] = set(values)
    canary_phase.labels(name, namespace, phase).set(1)
    for metric, value in values.items():
        canary_metric_analysis.labels(name, namespace, metric).set(float(value))


def canary_removed(namespace: str, name: str) -> None:
    key = (namespace, name)
    with _lock:
        names = _canaries.get(namespace, set())
        names.discard(name)
        canary_total.labels(namespace).set(len(names))
        phase = _phases.pop(key, None)
        metrics = _metric_names.pop(key, set())
    for series in (canary_weight, canary_status, canary_duration, canary_failed_checks):
        _remove(series, name, namespace)
    if phase is not None:
        _remove(canary_phase, name, namespace, phase)
    for metric in metrics:
        _remove(canary_metric_analysis, name, namespace, metric)


def health_observed(group: str, states: Mapping[str, int]) -> None:
    """A binding's targets by state; states no target is in any more drop to 0."""
    with _lock:
        before = _health_states.get(group, set())
        _health_states[group] = set(states) | before
    for state in before - set(states):
        target_health.labels(group, state).set(0)
    for state, count in states.items():
        target_health.labels(group, state).set(count)


def health_removed(group: str) -> None:
    with _lock:
        states = _health_states.pop(group, set())
    for state in states:
        _remove(target_health, group, state)


def _remove(series, *labels: str) -> None:
    try:
        series.remove(*labels)
    except KeyError:
        pass
