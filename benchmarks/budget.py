"""`make bench`, API budget: bindings at scale under the ELBv2 realism layer, its rate limits on.

`awsctl run` as a process, moto behind the realism layer (which answers `Throttling` past AWS's
documented buckets, and counts what it admits). Every time is set beside its floor: what AWS's
buckets alone would need for the calls the work cannot do without.

1. The operator's memory: RSS at 0, 100 and 1000 bindings of 2 endpoints (buckets raised for
   this part only: memory, not the budget, is measured).
2. 200 bindings of 2 endpoints: AWS calls per binding for the initial sync, and the time until
   every target is registered (floor: 200 RegisterTargets through a bucket of 20 at 4/s).
3. Steady state: AWS calls per second and throttled calls over a minute, with a Canary
   progressing beside the 200 bindings.
4. A burst of 200 endpoint changes (+1 endpoint on every binding). Meanwhile 10 pods turn
   terminating and the Canary's rollback webhook says yes: terminating -> deregistered (p99),
   rollback decision -> weight 0 written and read back, and time until every new target is
   registered.
5. At rest: the minute after the burst's last registration (each change's health read, which
   cannot come before the new targets pass their checks, falls in it for the last ones), and the
   minute after that. AWS calls, and the operator's CPU seconds, per phase.

Every group is in use (a listener rule forwards to it), so AWS health-checks its targets and the
bindings read health as they would on a real ALB.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client

from awsctl.dev.realism import RATE_LIMITS
from awsctl.dev.waiting import wait_until
from benchmarks.common import bench_environment, percentile, verdict
from tests.webhooks import webhook_server

BINDINGS = 200
ENDPOINTS = 2
TERMINATIONS = 10
RSS_POINTS = (0, 100, 1000)
GOAL_RSS_MIB = 120
GOAL_FLOOR_RATIO = 1.2
GOAL_DEREGISTER_P99 = 1.0
GOAL_ROLLBACK = 2.0
REST_WINDOW = 60.0
GOAL_REST_CPU = 0.5  # CPU seconds in a minute at rest
DESCRIBE_RATE = RATE_LIMITS["describe"][1]
REGISTER_BURST, REGISTER_RATE = RATE_LIMITS["register"]
_BASE = int(ipaddress.IPv4Address("10.128.0.0"))


def ips_for(index: int, count: int, offset: int = 0) -> list[str]:
    """Distinct pod-like IPs per binding (1024 per binding), outside moto's default VPC."""
    return [str(ipaddress.IPv4Address(_BASE + index * 1024 + offset + i + 1)) for i in range(count)]


def endpoint_slice(service: str, ips: list[str], terminating: frozenset[str] = frozenset()) -> dict:
    def conditions(ip):
        going = ip in terminating
        return {"ready": not going, "serving": True, "terminating": going}

    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-1", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": conditions(ip)} for ip in ips],
    }


def floor_seconds(calls: int, burst: float, rate: float) -> float:
    """How long a bucket of `burst` refilling at `rate` needs to admit `calls`."""
    return max(0.0, (calls - burst) / rate)


class Operator:
    """`awsctl run` on one namespace, as a process."""

    def __init__(self, state: Path, namespace: str, *args: str):
        self.log = open(state / f"operator-{namespace}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "awsctl", "run", "--liveness", "", "--namespace", namespace, *args],
            env=dict(os.environ),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def cpu_seconds(self) -> float:
        """User and system CPU time of the operator so far."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


RULES_PER_ALB = 90  # under ELBv2's 100 rules per load balancer


def populate(api, moto, namespace: str, count: int, in_use: bool = False) -> list[str]:
    """`count` bindings, each with a headless Service, one EndpointSlice of 2 endpoints and a group;
    `in_use`: a listener rule forwards to each group (ALBs of 90 rules), so its targets are checked."""
    core, disc, custom = client.CoreV1Api(api), client.DiscoveryV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": namespace}})
    moto_lock = threading.Lock()  # moto's backends are not thread-safe for concurrent creates
    listeners = [moto.listener(f"{namespace}-alb{n}") for n in range(-(-count // RULES_PER_ALB))] if in_use else []

    def one(i: int) -> str:
        name = f"b{i}"
        tg = f"{namespace}-{name}"[:32]
        with moto_lock:
            if in_use:
                moto.target_group(tg, listener=listeners[i // RULES_PER_ALB], priority=i % RULES_PER_ALB + 1)
            else:
                moto.target_group(tg)
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            },
        )
        disc.create_namespaced_endpoint_slice(namespace, endpoint_slice(name, ips_for(i, ENDPOINTS)))
        custom.create_namespaced_custom_object(
            "awsctl.io",
            "v1alpha1",
            namespace,
            "targetgroupbindings",
            {
                "apiVersion": "awsctl.io/v1alpha1",
                "kind": "TargetGroupBinding",
                "metadata": {"name": name},
                "spec": {"serviceRef": {"name": name, "port": 80}, "targetGroupName": tg},
            },
        )
        return name

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def synced(api, namespace: str, count: int, endpoints: int, field: str = "registeredTargets") -> bool:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "targetgroupbindings"
    )["items"]
    done = [b for b in items if (b.get("status") or {}).get(field) == endpoints]
    return len(done) >= count


def memory_slope(api, moto, state: Path) -> list[tuple[int, float, float]]:
    raised = {name: (100000, 100000) for name in RATE_LIMITS}
    moto.realism.limits = raised
    moto.realism.buckets.clear()
    flags = [f"--api-rate={bucket}=100000/100000" for bucket in ("elbv2-register", "elbv2-describe", "elbv2-modify")]
    rows = []
    for count in RSS_POINTS:
        namespace = f"rss-{count}"
        populate(api, moto, namespace, count)
        op = Operator(state, namespace, *flags)
        try:
            wait_until(
                lambda: synced(api, namespace, count, ENDPOINTS), f"{count} bindings synced", timeout=600, interval=2.0
            )
            time.sleep(10)  # settled: health read back, nothing left to do
            rss, peak = op.memory()
        finally:
            op.stop()
        rows.append((count, rss, peak))
        print(f"  RSS with {count:>4} bindings: {rss:.0f} MiB (peak {peak:.0f})", flush=True)
    moto.realism.limits = dict(RATE_LIMITS)
    moto.realism.buckets.clear()
    return rows


def calls_since(moto, before) -> dict[str, int]:
    now = moto.realism.stats.calls.copy()
    now.subtract(before)
    return {k: v for k, v in now.items() if v}


def registered(moto, arns: dict[str, str], wanted: dict[str, set[str]], since: float) -> float | None:
    """When every wanted key of every group was in a RegisterTargets moto answered after `since`."""
    seen: dict[str, set[str]] = {}
    last = since
    for write in list(moto.writes):
        if write.call == "register_targets" and write.at >= since:
            seen.setdefault(write.group, set()).update(write.keys)
            last = max(last, write.at)
    if all(wanted[name] <= seen.get(arn, set()) for name, arn in arns.items()):
        return last
    return None


def budget_story(api, moto, state: Path, hooks) -> dict:
    from tests.e2e.objects import canary, deployment, service

    namespace = "burst"
    names = populate(api, moto, namespace, BINDINGS, in_use=True)
    elbv2 = moto.client("elbv2")
    arns = {
        n: elbv2.describe_target_groups(Names=[f"{namespace}-{n}"[:32]])["TargetGroups"][0]["TargetGroupArn"]
        for n in names
    }
    moto.realism.stats.log.clear()
    moto.realism.recording = True
    before, throttled_before = moto.realism.stats.calls.copy(), moto.realism.stats.throttled

    started = time.monotonic()
    op = Operator(state, namespace, "--log-format", "json")
    try:
        wanted = {n: {f"{ip}:8080" for ip in ips_for(i, ENDPOINTS)} for i, n in enumerate(names)}
        done = wait_until(lambda: registered(moto, arns, wanted, started), "initial sync", timeout=300, interval=0.5)
        initial = {"seconds": done - started, "calls": calls_since(moto, before)}
        wait_until(lambda: synced(api, namespace, BINDINGS, ENDPOINTS), "statuses", timeout=120, interval=1.0)
        wait_until(lambda: synced(api, namespace, BINDINGS, ENDPOINTS, "healthyTargets"), "healthy", timeout=120)
        initial["to_health"] = calls_since(moto, before)
        initial["cpu"] = op.cpu_seconds()

        # A Canary progressing beside the bindings; its rollback webhook (Flagger's: 2xx means roll
        # back) says no until the burst, so the moment of the decision is the moment it says yes.
        hooks.respond("/rollback", 404)
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        listener = moto.listener("bench-burst")
        apps.create_namespaced_deployment(namespace, deployment("roll", replicas=2, container_port=8080))
        core.create_namespaced_service(namespace, service("roll", port=80, target_port=8080))
        custom.create_namespaced_custom_object(
            "awsctl.io",
            "v1alpha1",
            namespace,
            "canaries",
            canary(
                "roll",
                listener=listener,
                rule={"priority": 1},
                analysis={
                    "interval": "2s",
                    "stepWeights": list(range(1, 50)),
                    "webhooks": [{"name": "abort", "type": "rollback", "url": f"{hooks.url}/rollback"}],
                },
            ),
        )

        def phase() -> dict:
            return (
                custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "canaries", "roll").get(
                    "status"
                )
                or {}
            )

        wait_until(lambda: phase().get("phase") == "Initialized", "Canary Initialized", timeout=120, interval=1.0)
        apps.patch_namespaced_deployment(
            "roll",
            namespace,
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.local/app:v2"}]}}}},
        )
        wait_until(lambda: (phase().get("canaryWeight") or 0) >= 2, "Canary progressing", timeout=120, interval=1.0)
        rule = phase()["listenerRule"]["arn"]
        canary_arn = phase()["targetGroups"]["canary"][0]

        # Steady state: a minute of the operator's own calls.
        window = 60.0
        steady_before, throttled_steady = moto.realism.stats.calls.copy(), moto.realism.stats.throttled
        time.sleep(window)
        steady = calls_since(moto, steady_before)
        steady_throttled = moto.realism.stats.throttled - throttled_steady

        # The burst: +1 endpoint everywhere; meanwhile pods terminate and the analysis fails.
        burst_before = moto.realism.stats.calls.copy()
        burst_cpu = op.cpu_seconds()
        disc = client.DiscoveryV1Api(api)
        burst_at = time.monotonic()
        terminated: dict[str, tuple[str, float]] = {}

        def terminate() -> None:
            for j in range(TERMINATIONS):
                time.sleep(1.5)
                i = j * (BINDINGS // TERMINATIONS)
                name = names[i]
                ips = ips_for(i, ENDPOINTS) + ips_for(i, 1, offset=ENDPOINTS)
                going = ips[0]
                at = time.monotonic()
                disc.replace_namespaced_endpoint_slice(
                    f"{name}-1", namespace, endpoint_slice(name, ips, frozenset({going}))
                )
                terminated[name] = (f"{going}:8080", at)

        def fail_analysis() -> None:
            time.sleep(5)
            hooks.respond("/rollback", 200)

        side = [threading.Thread(target=terminate), threading.Thread(target=fail_analysis)]
        for i, name in enumerate(names):
            if i == 0:
                for thread in side:
                    thread.start()
            if name in terminated:
                continue  # its slice already carries the new endpoint (and the terminating one)
            disc.replace_namespaced_endpoint_slice(
                f"{name}-1", namespace, endpoint_slice(name, ips_for(i, ENDPOINTS) + ips_for(i, 1, offset=ENDPOINTS))
            )
        for thread in side:
            thread.join()
        new = {n: {f"{ips_for(i, 1, offset=ENDPOINTS)[0]}:8080"} for i, n in enumerate(names)}
        done = wait_until(lambda: registered(moto, arns, new, burst_at), "burst registered", timeout=300, interval=0.5)
        burst_seconds = done - burst_at

        deregistered = []
        for name, (key, at) in terminated.items():
            when = next(
                (
                    w.at
                    for w in list(moto.writes)
                    if w.call == "deregister_targets" and w.group == arns[name] and key in w.keys and w.at >= at
                ),
                None,
            )
            if when is None:
                raise RuntimeError(f"{key} of {name} was never deregistered")
            deregistered.append(when - at)

        decided = next(at for path, status, at in hooks.answered if path == "/rollback" and status == 200)
        written = wait_until(
            lambda: next(
                (
                    w.at
                    for w in moto.weight_writes
                    if w.route == rule and w.at >= decided and w.weights.get(canary_arn, -1) == 0
                ),
                None,
            ),
            "weight 0 written",
            timeout=60,
            interval=0.2,
        )
        read_back = next(
            at for at, action in list(moto.realism.stats.log) if action == "DescribeRules" and at >= written
        )
        burst_calls = calls_since(moto, burst_before)  # until the last registration (as counted beside the LBC)
        burst_cpu = op.cpu_seconds() - burst_cpu

        # At rest: the minute after the last registration, then the one after it.
        rest = []
        for _ in range(2):
            calls_before, cpu_before = moto.realism.stats.calls.copy(), op.cpu_seconds()
            time.sleep(REST_WINDOW)
            rest.append({"calls": calls_since(moto, calls_before), "cpu": op.cpu_seconds() - cpu_before})
        burst_calls_confirmed = calls_since(moto, burst_before)
        for minute in rest[1:]:  # what the second minute made is not the burst's
            for action, n in minute["calls"].items():
                burst_calls_confirmed[action] -= n
        rss, peak = op.memory()
    finally:
        op.stop()
        moto.realism.recording = False
    return {
        "initial": initial,
        "steady": steady,
        "steady_window": window,
        "steady_throttled": steady_throttled,
        "burst_seconds": burst_seconds,
        "burst_calls": burst_calls,
        "burst_calls_confirmed": burst_calls_confirmed,
        "burst_cpu": burst_cpu,
        "rest": rest,
        "deregistered": deregistered,
        "rollback_written": written - decided,
        "rollback_verified": read_back - decided,
        "throttled": moto.realism.stats.throttled - throttled_before,
        "rss": rss,
        "peak": peak,
    }


def per_binding(calls: dict[str, int], *actions: str, among: int = BINDINGS) -> float:
    return sum(n for a, n in calls.items() if not actions or a in actions) / among


def describe(calls: dict[str, int], among: int = BINDINGS) -> str:
    return ", ".join(f"{a} {n / among:.2f}" for a, n in sorted(calls.items(), key=lambda kv: -kv[1]))


def main() -> int:
    with bench_environment("awsctl-bench-budget-") as (state, api, moto), webhook_server() as hooks:
        print("Operator memory (VmRSS once synced, buckets raised so that only memory is measured)")
        slope = memory_slope(api, moto, state)
        story = budget_story(api, moto, state, hooks)

    initial, burst = story["initial"], story["burst_calls"]
    target_calls = (
        "RegisterTargets",
        "DeregisterTargets",
        "DescribeTargetHealth",
        "DescribeTargetGroups",
        "DescribeVpcs",
    )
    initial_floor = floor_seconds(BINDINGS, REGISTER_BURST, REGISTER_RATE)
    burst_floor = floor_seconds(BINDINGS + TERMINATIONS, REGISTER_BURST, REGISTER_RATE)
    steady = story["steady"]
    describes = sum(n for a, n in steady.items() if a.startswith("Describe")) / story["steady_window"]
    total = sum(steady.values()) / story["steady_window"]
    dereg_p99 = percentile(story["deregistered"], 0.99)
    init_binding_calls = per_binding({a: n for a, n in initial["calls"].items() if a in target_calls})
    changes = BINDINGS + TERMINATIONS  # the burst: +1 endpoint on every binding, and terminating pods
    burst_binding_calls = per_binding({a: n for a, n in burst.items() if a in target_calls}, among=changes)

    print(f"\n{BINDINGS} bindings x {ENDPOINTS} endpoints, one `awsctl run`, realism layer rate limits on")
    print(f"{'measure':<52} {'awsctl':>10} {'floor':>10} {'ratio':>6}")
    print(
        f"{'initial sync: all targets registered (s)':<52} {initial['seconds']:>10.1f} {initial_floor:>10.1f} "
        f"{initial['seconds'] / initial_floor:>6.2f}"
    )
    print(
        f"{'burst of 200 changes: all registered (s)':<52} {story['burst_seconds']:>10.1f} {burst_floor:>10.1f} "
        f"{story['burst_seconds'] / burst_floor:>6.2f}"
    )
    print(f"{'terminating -> deregistered, during the burst, p99 (s)':<52} {dereg_p99:>10.2f} {'0':>10}")
    print(f"{'rollback decision -> weight 0 written (s)':<52} {story['rollback_written']:>10.2f} {'0':>10}")
    print(f"{'rollback decision -> weight 0 read back (s)':<52} {story['rollback_verified']:>10.2f} {'0':>10}")
    print(f"{'steady state: AWS calls per second (all)':<52} {total:>10.2f} {'0':>10}")
    print(f"{'steady state: Describe* per second (budget 10/s)':<52} {describes:>10.2f} {'0':>10}")
    print(f"{'steady state: throttled by AWS':<52} {story['steady_throttled']:>10} {'0':>10}")
    print(f"{'whole story: throttled by AWS':<52} {story['throttled']:>10}")
    print("\nAWS calls per binding (target calls; the LBC v3.5.0: 2.03 initial, 2.0 scale)")
    print(f"  initial sync, until registered:   {init_binding_calls:.2f}  ({describe(initial['calls'])})")
    print(
        f"  initial sync, until health read:  "
        f"{per_binding({a: n for a, n in initial['to_health'].items() if a in target_calls}):.2f}"
    )
    print(f"AWS calls per change in the burst ({BINDINGS} endpoints added, {TERMINATIONS} terminating)")
    confirmed = story["burst_calls_confirmed"]
    confirmed_binding_calls = per_binding({a: n for a, n in confirmed.items() if a in target_calls}, among=changes)
    for what, figure, calls in (
        ("until registered:", burst_binding_calls, burst),
        ("until health read:", confirmed_binding_calls, confirmed),
    ):
        route = {a: n for a, n in calls.items() if a not in target_calls}
        print(
            f"  {what:<32}  {figure:.2f}  ({describe({a: n for a, n in calls.items() if a in target_calls}, changes)})"
        )
        if route:
            print(f"  {'':<32}  the Canary's route besides: {describe(route, changes)}")
    first, second = story["rest"]
    print("\nOperator CPU seconds per phase (the LBC v3.5.0 on the same work: 2.9, 2.4, 0.1)")
    print(f"{'phase':<52} {'CPU s':>10} {'AWS calls':>10} {'goal':>10}")
    print(f"{'initial sync, start-up included, until healthy':<52} {initial['cpu']:>10.1f} {'':>10} {'':>10}")
    print(f"{'burst of 200 changes, until the last registration':<52} {story['burst_cpu']:>10.1f} {'':>10} {'':>10}")
    print(
        f"{'minute 1 after it (the last changes health read)':<52} {first['cpu']:>10.2f} "
        f"{sum(first['calls'].values()):>10} {'':>10}"
    )
    print(
        f"{'minute 2 after it: at rest':<52} {second['cpu']:>10.2f} {sum(second['calls'].values()):>10} "
        f"{'< 0.5, 0':>10}"
    )
    if first["calls"]:
        print(f"  minute 1: {describe(first['calls'])} per binding")
    print("\nOperator memory")
    print(f"{'bindings':>8} {'RSS MiB':>8} {'peak MiB':>9}")
    for count, rss, peak in slope:
        print(f"{count:>8} {rss:>8.0f} {peak:>9.0f}")
    print(f"{'story':>8} {story['rss']:>8.0f} {story['peak']:>9.0f}  ({BINDINGS} bindings, a Canary, the burst)")
    per_thousand = (slope[-1][1] - slope[0][1]) / (RSS_POINTS[-1] - RSS_POINTS[0]) * 1000
    print(f"  slope: {per_thousand:.0f} MiB per 1000 bindings")

    missed = []
    if initial["seconds"] > GOAL_FLOOR_RATIO * initial_floor:
        missed.append(f"initial sync {initial['seconds']:.1f}s > {GOAL_FLOOR_RATIO}x floor")
    if story["burst_seconds"] > GOAL_FLOOR_RATIO * burst_floor:
        missed.append(f"burst {story['burst_seconds']:.1f}s > {GOAL_FLOOR_RATIO}x floor")
    if dereg_p99 > GOAL_DEREGISTER_P99:
        missed.append(f"deregistration p99 {dereg_p99:.2f}s > {GOAL_DEREGISTER_P99}s")
    if story["rollback_verified"] > GOAL_ROLLBACK:
        missed.append(f"rollback verified in {story['rollback_verified']:.2f}s > {GOAL_ROLLBACK}s")
    if story["steady_throttled"]:
        missed.append(f"{story['steady_throttled']} calls throttled in steady state")
    if describes > DESCRIBE_RATE / 2:
        missed.append(f"steady Describe* {describes:.1f}/s > half the budget")
    if init_binding_calls > 2.0:
        missed.append(f"initial sync {init_binding_calls:.2f} calls per binding > 2")
    if confirmed_binding_calls > 2.0:
        missed.append(f"burst {confirmed_binding_calls:.2f} calls per change > 2")
    if second["calls"]:
        missed.append(f"at rest: {describe(second['calls'])} AWS calls per binding in a minute")
    if second["cpu"] > GOAL_REST_CPU:
        missed.append(f"at rest: {second['cpu']:.2f} CPU s in a minute > {GOAL_REST_CPU}")
    if max(peak for _, _, peak in slope[:2]) > GOAL_RSS_MIB or story["peak"] > GOAL_RSS_MIB:
        missed.append(f"peak RSS above {GOAL_RSS_MIB} MiB")
    return verdict(missed)


if __name__ == "__main__":
    raise SystemExit(main())
