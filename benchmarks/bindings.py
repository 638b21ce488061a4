"""`make bench`: TargetGroupBinding costs against moto and the real local control plane.

1. AWS calls per reconcile (botocore before-call hook), for a first sync, a steady-state resync
   and a change, with 1, 50 and 200 bindings of 300, 50 and 10 endpoints.
2. Time from an EndpointSlice change to the target registered in moto, with `awsctl run` as a
   process reconciling 200 bindings: a trickle of single changes and a burst of 200 at once.
3. The operator's peak RSS (VmHWM).
"""

from __future__ import annotations

import ipaddress
import math
import os
import statistics
import subprocess
import sys
import time

from kubernetes import client

from awsctl.aws.clients import CallCounter, Clients
from awsctl.aws.targets import TargetGroups
from awsctl.controllers.binding_reconciler import BindingReconciler
from awsctl.kube.client import Kube
from benchmarks.common import bench_environment, peak_rss_mib, percentile

SCENARIOS = [(1, 300), (50, 50), (200, 10)]


def endpoint_slice(service: str, ips: list[str]) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-1", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
    }


_BASE = int(ipaddress.IPv4Address("10.128.0.0"))


def ips_for(index: int, count: int, offset: int = 0) -> list[str]:
    """Distinct pod-like IPs per binding (1024 per binding), outside moto's default VPC."""
    return [str(ipaddress.IPv4Address(_BASE + index * 1024 + offset + i + 1)) for i in range(count)]


def group_name(namespace: str, binding: str) -> str:
    return f"{namespace}-{binding}"[:32]  # ELBv2 target group names are at most 32 characters


def setup(api, moto, namespace: str, bindings: int, endpoints: int) -> list[str]:
    core, disc, custom = client.CoreV1Api(api), client.DiscoveryV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": namespace}})
    names = []
    for i in range(bindings):
        name = f"b{i}"
        tg = group_name(namespace, name)
        moto.target_group(tg)
        core.create_namespaced_service(namespace, {"metadata": {"name": name}, "spec": {
            "clusterIP": "None", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        disc.create_namespaced_endpoint_slice(namespace, endpoint_slice(name, ips_for(i, endpoints)))
        custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "targetgroupbindings", {
            "apiVersion": "awsctl.io/v1alpha1", "kind": "TargetGroupBinding", "metadata": {"name": name},
            "spec": {"serviceRef": {"name": name, "port": 80}, "targetGroupName": tg}})
        names.append(name)
    return names


def measure_calls(reconciler: BindingReconciler, counter: CallCounter, namespace: str, names: list[str]):
    before_r, before_w = counter.reads(), counter.writes()
    for name in names:
        reconciler.reconcile(namespace, name)
    n = len(names)
    return (counter.reads() - before_r) / n, (counter.writes() - before_w) / n


def main() -> int:
    rows_calls, rows_latency = [], []
    with bench_environment("awsctl-bench-") as (state, api, moto):
        for bindings, endpoints in SCENARIOS:
            namespace = f"calls-{bindings}x{endpoints}"
            names = setup(api, moto, namespace, bindings, endpoints)
            counter = CallCounter()
            reconciler = BindingReconciler(Kube(api), TargetGroups(Clients(counter)))
            first = measure_calls(reconciler, counter, namespace, names)
            steady = measure_calls(reconciler, counter, namespace, names)
            changed = max(1, endpoints // 10)
            disc = client.DiscoveryV1Api(api)
            for i, name in enumerate(names):  # replace 10% of the endpoints of every binding
                ips = ips_for(i, endpoints)[changed:] + ips_for(i, changed, offset=endpoints)
                disc.replace_namespaced_endpoint_slice(f"{name}-1", namespace, endpoint_slice(name, ips))
            change = measure_calls(reconciler, counter, namespace, names)
            bound = math.ceil(2 * changed / 200) + 1
            rows_calls.append((bindings, endpoints, first, steady, changed, change, bound))

        # Latency with the operator as a process on the 200-binding namespace.
        namespace, names = "calls-200x10", [f"b{i}" for i in range(200)]
        with open(state / "operator.log", "ab") as log:
            op = subprocess.Popen([sys.executable, "-m", "awsctl", "run", "--liveness", "", "--resync-seconds",
                                   "60", "--log-format", "text"], env=dict(os.environ), stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            time.sleep(8)  # resume: every binding is already in sync
            disc = client.DiscoveryV1Api(api)
            arn_of = {n: moto.client("elbv2").describe_target_groups(Names=[group_name(namespace, n)])
                      ["TargetGroups"][0]["TargetGroupArn"] for n in names}

            def change(index: int, name: str, offset: int) -> tuple[str, str, float]:
                ips = ips_for(index, 10) + ips_for(index, 1, offset=offset)
                started = time.monotonic()
                disc.replace_namespaced_endpoint_slice(f"{name}-1", namespace, endpoint_slice(name, ips))
                return arn_of[name], f"{ips[-1]}:8080", started

            def latencies(pending, timeout=60.0) -> list[float]:
                """The registration time is stamped by the moto hook; this loop only waits for it, lazily."""
                deadline = time.monotonic() + timeout
                wanted = {(arn, key) for arn, key, _ in pending}
                found: dict[tuple[str, str], float] = {}
                seen = 0
                while len(found) < len(wanted) and time.monotonic() < deadline:
                    time.sleep(0.25)
                    writes = list(moto.writes)
                    for w in writes[seen:]:
                        if w.call == "register_targets":
                            for key in w.keys:
                                if (w.group, key) in wanted:
                                    found.setdefault((w.group, key), w.at)
                    seen = len(writes)
                out = [found[(arn, key)] - started for arn, key, started in pending if (arn, key) in found]
                if len(out) < len(pending):
                    raise RuntimeError(f"{len(pending) - len(out)} changes were never registered")
                return out

            trickle = []
            for i, name in enumerate(names[:30]):
                trickle += latencies([change(i, name, 20)])
            burst = latencies([change(i, name, 40) for i, name in enumerate(names)])
            rss = peak_rss_mib(op.pid)
        finally:
            op.terminate()
            op.wait(15)
        for label, values in (("trickle, 1 change at a time (30)", trickle), ("burst, 200 at once", burst)):
            rows_latency.append((label, statistics.median(values), percentile(values, 0.99), max(values)))

    print("\nAWS API calls per reconcile (botocore before-call hook)")
    print(f"{'bindings':>8} {'endpoints':>9} | {'first sync r/w':>15} | {'steady r/w':>11} | "
          f"{'change (+-n)':>12} {'r/w':>11} {'write bound':>11}")
    for b, e, first, steady, changed, chg, bound in rows_calls:
        print(f"{b:>8} {e:>9} | {first[0]:>7.2f}/{first[1]:<7.2f} | {steady[0]:>5.2f}/{steady[1]:<5.2f} | "
              f"{'+' + str(changed) + '/-' + str(changed):>12} {chg[0]:>5.2f}/{chg[1]:<5.2f} {bound:>11}")
    print("\nEndpointSlice change -> target registered in moto (awsctl run, 200 bindings)")
    print(f"{'scenario':<34} {'p50 s':>7} {'p99 s':>7} {'max s':>7}")
    for label, p50, p99, worst in rows_latency:
        print(f"{label:<34} {p50:>7.3f} {p99:>7.3f} {worst:>7.3f}")
    print(f"\noperator peak RSS (VmHWM) with 200 bindings: {rss:.0f} MiB")
    failures = [r for r in rows_calls if r[3][1] != 0 or r[5][1] > r[6]]
    if failures:
        print(f"TARGET MISSED: {failures}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
