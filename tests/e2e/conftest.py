"""e2e fixtures: the real local control plane (built from the Go module proxy) and `awsctl run` as a process.

Nothing here skips: if the binaries cannot be built or the cluster cannot start, the tier fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config

from awsctl.api import grant
from awsctl.dev.cluster import Environment, free_port
from awsctl.dev.dataplane import DataPlane
from awsctl.dev.load import Load
from awsctl.dev.pods import TableClient
from tests.webhooks import webhook_server

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as err:  # noqa: BLE001 - keep polling through transient API errors
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


UNGRANTED = "awsctl.io/test-ungranted"  # a namespace with this label gets no TrafficGrant of the suite's


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    env = Environment(tmp_path_factory.mktemp("dev") / "state")
    env.up(with_moto=False)
    try:
        env.install_crds()
        # Every test namespace may use everything, but one labelled UNGRANTED (the trust-boundary story).
        env.grant("e2e", grant.everything(unless_label=UNGRANTED))
        yield env, config.new_client_from_config(str(env.kubeconfig))
    finally:
        env.down()


@pytest.fixture
def kube(cluster):
    return cluster[1]


@pytest.fixture
def namespace(kube):
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    wait_for(lambda: client.CoreV1Api(kube).list_namespaced_service_account(name).items, what="default SA")
    yield name
    release(kube, name)


def release(kube, namespace: str) -> None:
    """Drops what a test left behind, so a later (cluster-wide) operator never meets it. The test's
    operator is gone by now, so awsctl's finalizers are lifted by hand; moto is reset anyway."""
    custom = client.CustomObjectsApi(kube)
    for plural in ("canaries", "targetgroupbindings"):
        for item in custom.list_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, plural)["items"]:
            name = item["metadata"]["name"]
            try:
                custom.patch_namespaced_custom_object(
                    "awsctl.io", "v1alpha1", namespace, plural, name, {"metadata": {"finalizers": None}}
                )
                custom.delete_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, plural, name)
            except client.ApiException as err:
                if err.status != 404:
                    raise
    client.CoreV1Api(kube).delete_namespace(namespace)


class Operator:
    def __init__(self, env: Environment, moto, log_path: Path, extra_args=()):
        self.log_path = log_path
        self.env = dict(os.environ, KUBECONFIG=str(env.kubeconfig), **moto.env())
        # Short periods, so that a story sees a missed event or a target removed by hand within seconds.
        self.args = [
            sys.executable,
            "-m",
            "awsctl",
            "run",
            "--cluster-name",
            "e2e",
            "--liveness",
            "",
            "--resync-seconds",
            "2",
            "--drift-seconds",
            "10",
            *extra_args,
        ]
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def stop(self):
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def timeline(self, lines: int = 40) -> str:
        """The phases and warnings of the log, a short line each: printed first when a story fails, so
        that a cut output still shows where the time went."""
        out = []
        for line in self.log().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("phase") or rec.get("severity") in ("warn", "warning", "error"):
                when = str(rec.get("timestamp", ""))[11:19]
                out.append(f"{when} {rec.get('phase') or rec.get('severity')}: {str(rec.get('message'))[:110]}")
        return "\n".join(out[-lines:])


@pytest.fixture
def operator(cluster, moto, namespace, tmp_path, request):
    """Scoped to the test's namespace, so objects that earlier tests left behind never reach it."""
    op = Operator(cluster[0], moto, tmp_path / "operator.log", extra_args=("--namespace", namespace)).start()
    yield op
    op.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(f"--- operator timeline ---\n{op.timeline()}\n--- operator log ---\n{op.log()[-6000:]}")


@pytest.fixture(scope="session")
def pods_server(cluster, tmp_path_factory):
    """`python -m awsctl.dev.pods` for the session's cluster: every pod with a port answers on 127.0.0.1."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("pods") / "pods.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "awsctl.dev.pods", f"--kubeconfig={cluster[0].kubeconfig}", f"--port={port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200, what="the pods server")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def traffic(moto, pods_server):
    """A data plane on this test's moto listeners, to the cluster's pods; health checks probe while it
    runs (other stories keep the realism layer's timer)."""
    table = TableClient(pods_server)
    table.ready.wait(10)
    plane = DataPlane(moto.realism, table.resolve).start()
    try:
        yield plane
    finally:
        plane.stop()
        table.close()


@pytest.fixture
def report(record_property, traffic):
    """Prints a story's request count and failures, and hands the count to the run's summary (printed
    by tests/e2e/conftest.py even when xdist captures the stories' output)."""

    def report(name: str, load: Load) -> str:
        line = f"{name}: {load.summary().line()}"
        record_property("requests", line)
        print(line)
        failed = [(round(r.sent, 2), r.status, r.error, r.pod) for r in load.responses if r.failed]
        answered = [
            (round(r.time, 2), r.status, r.error, r.group and r.group.split("/")[-2], r.target, f"node {r.node}")
            for r in traffic.records
            if r.error
        ]
        return f"{line}; first failures {failed[:10]}; the load balancer's own answers {answered[:10]}"

    return report


@pytest.fixture
def hooks():
    """A webhook receiver on a free 127.0.0.1 port (tests/webhooks.py)."""
    with webhook_server() as server:
        yield server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def pytest_terminal_summary(terminalreporter):
    """The request count of every story under load (the `report` fixture's), printed even when
    pytest-xdist's workers captured the stories' own output."""
    lines = [
        f"{rep.nodeid.rsplit('::', 1)[-1]}: {value}"
        for kind in ("passed", "failed")
        for rep in terminalreporter.stats.get(kind, ())
        if getattr(rep, "when", None) == "call"
        for name, value in getattr(rep, "user_properties", ())
        if name == "requests"
    ]
    if lines:
        terminalreporter.section("requests under load")
        for line in sorted(lines):
            terminalreporter.write_line(line)
