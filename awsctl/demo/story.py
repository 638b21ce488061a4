"""`awsctl demo`: the main job on the embedded default, in one command.

Local control plane, pods that answer and moto with its data plane (`awsctl dev up`), the ALB from
terraform/examples/local (or boto3 when terraform is absent), the CRDs, the operator, then a headless
app with a Canary stepping 0.5% -> 5% -> 25% -> 50%, then a bake at 100% with the primary warm.

Real requests run through the listener the whole time (100 a second, open loop). A good image steps
up, bakes and is promoted. A bad image's pods answer 30% of their requests with 500: the analysis
learns it only from the CloudWatch metrics the data plane published from that traffic (a minute's
period, once the minute is over), and the weight goes back to the primary. It ends with the failed
requests counted (only the bad image's own, while it had weight), a summary, and a plot (matplotlib)
of the share per version the requests measured, the weight AWS showed and the error rate, and it
stops everything it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from awsctl.api.phases import FINISHED, Phase
from awsctl.demo.alb import create_alb
from awsctl.dev import propagation
from awsctl.dev.cluster import Environment
from awsctl.dev.load import Load, Response
from awsctl.dev.waiting import wait_until
from awsctl.routing.alb_wire import weights_of

NS = "demo"
GOOD, BAD = "demo/web:v2", "demo/web:v3-broken"
BAD_ERROR_RATE = 0.3  # the share of its requests v3-broken's pods answer with 500
BAKE_SECONDS = 20
RATE = 100  # requests per second through the listener; the canary gets its weight's share
HOST = "web.demo"


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


@dataclass
class Recording:
    started: float = field(default_factory=time.monotonic)
    times: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started


def per_second(responses: list[Response], end: float) -> tuple[list[float], dict[str, list[float | None]], list]:
    """The requests' own measure, one-second windows: the share each version answered, and the share
    that failed (connection errors included)."""
    seconds = list(range(int(end) + 1))
    answered: list[dict[str, int]] = [{} for _ in seconds]
    failed, total = [0] * len(seconds), [0] * len(seconds)
    for r in responses:
        index = int(r.sent)
        if index >= len(seconds):
            continue
        total[index] += 1
        failed[index] += r.failed
        if r.version:
            answered[index][r.version] = answered[index].get(r.version, 0) + 1
    versions = sorted({v for window in answered for v in window})
    shares = {v: [100 * w.get(v, 0) / n if n else None for w, n in zip(answered, total, strict=True)] for v in versions}
    errors = [100 * f / n if n else None for f, n in zip(failed, total, strict=True)]
    return [float(x) for x in seconds], shares, errors


def _alb(env: Environment, state_dir: Path, exports: dict) -> tuple[str, str]:
    from awsctl.demo import terraform

    if terraform.available():
        _step("creating the ALB with terraform/examples/local against moto (the aws provider waits ~60 s)")
        tf = terraform.Terraform(state_dir / "tf")
        tf.init()
        out = tf.apply(endpoint=exports["AWS_ENDPOINT_URL"])
        print(f"    listener {out['listener_arn']}\n    vpc {out['vpc_id']}  role {out['role_arn']}")
        return out["listener_arn"], "terraform"
    import boto3

    _step("terraform is not installed (or has no provider mirror): creating the ALB with boto3 instead")
    _, listener = create_alb(boto3.client("elbv2"), boto3.client("ec2"))
    print(f"    listener {listener}")
    return listener, "boto3"


def run_demo(state_dir: Path | None = None, keep: bool = False) -> int:
    from kubernetes import client, config

    started = time.monotonic()
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="awsctl-demo-"))
    env = Environment(state_dir)
    _step("starting the local control plane and moto (awsctl dev up)")
    exports = env.up()
    os.environ.update(exports)
    operator, load = None, None
    try:
        listener, how = _alb(env, state_dir, exports)
        api_client = config.new_client_from_config(str(env.kubeconfig))
        core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        custom = client.CustomObjectsApi(api_client)
        _step("applying the CRDs, and a TrafficGrant that lets the demo namespace use this listener")
        env.install_crds()
        env.grant(
            "demo",
            {
                "namespaces": {"names": [NS]},
                "listeners": [listener],
                "rulePriorities": [{"from": 1, "to": 100}],
            },
        )

        _step("starting the operator (awsctl run)")
        log_path = state_dir / "logs" / "operator.log"
        with open(log_path, "ab") as log:
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "awsctl",
                    "run",
                    "--cluster-name",
                    "demo",
                    "--liveness",
                    "",
                    "--namespace",
                    NS,
                    "--log-format",
                    "text",
                ],
                env=dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        print(f"    logs: {log_path}")

        _step("deploying web (3 pods, containerPort 8080) behind a headless Service (port 80 -> 8080)")
        core.create_namespace({"metadata": {"name": NS}})
        wait_until(lambda: core.list_namespaced_service_account(NS).items, "namespace")
        labels = {"app": "web"}
        apps.create_namespaced_deployment(
            NS,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": "demo/web:v1",
                                    "ports": [{"name": "http", "containerPort": 8080}],
                                }
                            ]
                        },
                    },
                },
            },
        )
        core.create_namespaced_service(
            NS,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "clusterIP": "None",
                    "selector": labels,
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            },
        )
        import boto3

        _step(
            f"creating the Canary: steps 0.5% -> 5% -> 25% -> 50%, success rate >= 99% (1 m periods, as ALB "
            f"publishes them), then a {BAKE_SECONDS} s bake at 100%"
        )
        custom.create_namespaced_custom_object(
            "awsctl.io",
            "v1alpha1",
            NS,
            "canaries",
            {
                "apiVersion": "awsctl.io/v1alpha1",
                "kind": "Canary",
                "metadata": {"name": "web"},
                "spec": {
                    "targetRef": {"name": "web"},
                    "service": {"port": 80, "targetPort": "http"},
                    # Short health checks keep the demo quick under the realism layer: healthy 10 s
                    # after registration (5 s x 2), as AWS allows at the least.
                    "loadBalancer": {
                        "listenerARN": listener,
                        "rule": {"priority": 10, "hosts": [HOST]},
                        "targetGroup": {
                            "healthCheck": {"intervalSeconds": 5, "healthyThresholdCount": 2},
                            "deregistrationDelaySeconds": 5,
                        },
                    },
                    # ALB publishes a minute's metrics a minute or more after it is over, and no zero counts:
                    # the default no-data tolerance covers that (4 periods: 24 checks of 10 s).
                    "analysis": {
                        "interval": "10s",
                        "threshold": 2,
                        "stepWeights": [0.5, 5, 25, 50],
                        "metrics": [{"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}],
                        "bake": {"weight": 100, "duration": f"{BAKE_SECONDS}s"},
                    },
                },
            },
        )

        def canary() -> dict:
            return cast(dict, custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "canaries", "web"))

        wait_until(
            lambda: (lambda s: s if s.get("phase") == Phase.INITIALIZED else None)(canary().get("status") or {}),
            "Canary Initialized",
        )
        svc = core.read_namespaced_service("web-primary", NS)
        print(
            f"    Initialized: web-primary is headless (clusterIP {svc.spec.cluster_ip}), "
            f"ip target groups, all traffic on the primary"
        )

        url = wait_until(
            lambda: next((row["url"] for row in env.listeners() if row["listenerArn"] == listener), None),
            "the listener's data plane",
        )
        # The new rule reaches the load balancer's slowest node this much later (awsctl.dev.propagation): until
        # then a late node answers with the listener's default action, a 404, as a real ALB's node would.
        time.sleep(propagation.from_env().rule_seconds[1])
        _step(f"sending {RATE} requests a second (Host: {HOST}) through the listener at {url}")
        load = Load(url + "/", RATE, headers={"Host": HOST}).start()
        record = Recording(started=load.started)
        elbv2 = boto3.client("elbv2")

        def follow(until: Collection[str], label: str) -> dict:
            """Live progress, one line a second: AWS's weights and health, phase, the metric awsctl saw."""
            last_line, baking = "", False
            while True:
                status = canary().get("status") or {}
                if status.get("phase") == Phase.BAKING and not baking and status.get("lastAppliedSpec") != label:
                    baking = True
                    record.marks.append((record.now(), "BAKE"))
                rule = (status.get("listenerRule") or {}).get("arn")
                actions = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"] if rule else []
                weights = weights_of(actions)
                total = sum(weights.values()) or 1
                canary_arn = status["targetGroups"]["canary"][0]
                share = 100.0 * weights.get(canary_arn, 0) / total
                metric = next((m for m in status.get("metrics") or () if "value" in m), None)
                health = []
                for role in ("primary", "canary"):
                    arn = status["targetGroups"][role][0]
                    states = [
                        d["TargetHealth"]["State"]
                        for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                    ]
                    # The states AWS shows (unused, initial, healthy, draining), counted per side.
                    counts = " ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "no targets"
                    health.append(f"{role} [{counts}]")
                record.times.append(record.now())
                record.weights.append(share)
                rate = f"{metric['value']:.1f}%" if metric else "-"
                recent = load.since(record.now() - 5)
                failed = sum(r.failed for r in recent)
                news = (
                    f"{status.get('phase', ''):<16} canary {share:5.1f}% (ALB {weights.get(canary_arn, 0)}/{total})  "
                    f"{'  '.join(health)}  analysis success {rate}"
                )
                if news != last_line:  # a line when AWS, the phase or the analysis moved
                    print(
                        f"    {record.now():5.1f}s  {news}  failed now {100 * failed / max(1, len(recent)):4.1f}%",
                        flush=True,
                    )
                    last_line = news
                if status.get("phase") in until and status.get("lastAppliedSpec") != label:
                    return status
                time.sleep(1.0)

        _step(
            f"rolling out {GOOD}: healthy metrics, the weights step up, a {BAKE_SECONDS} s bake at 100%, then promotion"
        )
        promoted_from = canary()["status"]["lastAppliedSpec"]
        record.marks.append((record.now(), "V2"))
        apps.patch_namespaced_deployment(
            "web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": GOOD}]}}}}
        )
        good = follow(FINISHED, promoted_from)
        primary_image = apps.read_namespaced_deployment("web-primary", NS).spec.template.spec.containers[0].image
        print(f"    {good['phase']}: web-primary now runs {primary_image}")

        _step(
            f"rolling out {BAD}: its pods answer {BAD_ERROR_RATE:.0%} of requests with 500; the analysis sees it "
            "in the metrics the data plane publishes, once a minute"
        )
        record.marks.append((record.now(), "V3"))
        broken = {
            "name": "web",
            "image": BAD,
            "env": [{"name": "DEV_ERROR_RATE", "value": str(BAD_ERROR_RATE)}],
        }
        apps.patch_namespaced_deployment("web", NS, {"spec": {"template": {"spec": {"containers": [broken]}}}})
        bad = follow(FINISHED, good["lastAppliedSpec"])
        primary_image = apps.read_namespaced_deployment("web-primary", NS).spec.template.spec.containers[0].image
        print(f"    {bad['phase']}: {bad.get('message', '')}")
        print(f"    web-primary still runs {primary_image}")
        wait_until(  # the canary's pods go loadBalancer.propagationSeconds after its weight 0 is verified
            lambda: not (apps.read_namespaced_deployment("web", NS).spec.replicas or 0), "the canary scaled to 0"
        )
        print(f"    {record.now():5.1f}s  the canary scaled to 0")
        time.sleep(5)  # its pods stop; the primary serves on
        summary = load.stop()
        failures = [r for r in load.responses if r.failed]
        by = sorted({(r.status, r.version) for r in failures}, key=str)
        own = all(status == 500 and version == "v3-broken" for status, version in by)
        print(f"    {summary.line()}")
        print(f"    failed requests: {len(failures)}, answered by {by or 'none'}" + ("" if own else " (NOT only v3's)"))

        _step("awsctl status")
        subprocess.run([sys.executable, "-m", "awsctl", "status", "-n", NS], check=False)

        from awsctl.demo.plot import chart

        seconds, shares, errors = per_second(list(load.responses), record.now())
        png = chart(
            state_dir / "canary.png",
            seconds=seconds,
            shares=shares,
            weight_times=record.times,
            weights=record.weights,
            errors=errors,
            marks=record.marks,
        )
        _step("summary")
        print(f"    ALB from {how}; {GOOD} {good['phase']}, {BAD} {bad['phase']}")
        print(f"    weights stepped {sorted({round(w, 1) for w in record.weights})} (percent, as AWS showed them)")
        print(f"    plot of the share per version, the weight AWS showed and the failed requests: {png}")
        print(f"    demo finished in {time.monotonic() - started:.1f}s")
        ok = good["phase"] == Phase.SUCCEEDED and bad["phase"] == Phase.FAILED and own
        return 0 if ok else 1
    finally:
        if load:
            load.stop()
        if operator:
            operator.terminate()
            try:
                operator.wait(10)
            except subprocess.TimeoutExpired:
                operator.kill()
        if keep:
            print(f"environment kept; `awsctl dev down --state-dir {state_dir}` stops it")
        else:
            env.down()
