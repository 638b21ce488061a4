"""`awsctl demo`: the main job on the embedded default, in one command.

Local control plane and moto (`awsctl dev up`), the ALB from terraform/examples/local (or boto3 when
terraform is absent), the CRDs, the operator, then a headless app with a Canary stepping
0.5% -> 5% -> 25% -> 50%, then a bake at 100% with the primary warm: a good image bakes and is
promoted; a bad image passes the steps but fails under full load, its CloudWatch alarm goes to
ALARM during the bake, and the weight goes back to the primary (which never stopped) at once.
moto has no real traffic and evaluates no alarms, so the demo plays the ALB's part (it writes the
RequestCount and 5XX metrics CloudWatch would have for the canary group, in proportion to the
weight AWS shows) and the alarm's. It ends with a summary and a PNG of canary weight and success
rate, with the bakes marked, and stops everything it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from awsctl.api.phases import FINISHED, Phase
from awsctl.demo.alb import create_alb, record_requests
from awsctl.dev.cluster import Environment
from awsctl.dev.waiting import wait_until
from awsctl.routing.alb_wire import weights_of

NS = "demo"
GOOD, BAD = "demo/web:v2", "demo/web:v3-broken"
ALARM = "demo-web-5xx"
BAKE_SECONDS = 20
REQUESTS_PER_SECOND = 2000  # what the demo ALB receives; the canary gets its weight's share


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


@dataclass
class Recording:
    started: float = field(default_factory=time.monotonic)
    times: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    success: list[float | None] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started


class Traffic:
    """Plays the ALB: every half second, the canary group gets its weight's share of the requests,
    and the image it runs decides how many of them fail."""

    def __init__(self, cloudwatch, listener_arn: str):
        self.cloudwatch, self.listener = cloudwatch, listener_arn
        self.group: str | None = None
        self.canary_weight = 0.0
        self.error_rate = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            requests = REQUESTS_PER_SECOND * 0.5 * self.canary_weight / 100
            if self.group and requests > 0:
                record_requests(self.cloudwatch, self.listener, self.group, requests, round(requests * self.error_rate))


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
    operator, traffic = None, None
    try:
        listener, how = _alb(env, state_dir, exports)
        api_client = config.new_client_from_config(str(env.kubeconfig))
        core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        custom = client.CustomObjectsApi(api_client)
        _step("applying the CRDs")
        env.install_crds()

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

        cloudwatch = boto3.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=50,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="no 5xx")
        _step(
            f"creating the Canary: steps 0.5% -> 5% -> 25% -> 50%, success rate >= 99% (1 m periods), "
            f"then a {BAKE_SECONDS} s bake at 100% gated by the alarm {ALARM}"
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
                        "rule": {"priority": 10, "hosts": ["web.demo"]},
                        "targetGroup": {
                            "healthCheck": {"intervalSeconds": 5, "healthyThresholdCount": 2},
                            "deregistrationDelaySeconds": 5,
                        },
                    },
                    "analysis": {
                        "interval": "2s",
                        "threshold": 2,
                        "stepWeights": [0.5, 5, 25, 50],
                        "metrics": [{"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}],
                        "alarms": [{"name": ALARM}],
                        "bake": {"weight": 100, "duration": f"{BAKE_SECONDS}s"},
                    },
                },
            },
        )

        def canary() -> dict:
            return cast(dict, custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "canaries", "web"))

        st = wait_until(
            lambda: (lambda s: s if s.get("phase") == Phase.INITIALIZED else None)(canary().get("status") or {}),
            "Canary Initialized",
        )
        svc = core.read_namespaced_service("web-primary", NS)
        print(
            f"    Initialized: web-primary is headless (clusterIP {svc.spec.cluster_ip}), "
            f"ip target groups, all traffic on the primary"
        )

        traffic = Traffic(cloudwatch, listener).start()
        traffic.group = st["targetGroups"]["canary"][0]
        record = Recording()
        elbv2 = boto3.client("elbv2")

        def follow(until: Collection[str], label: str, on_bake=None) -> dict:
            """Live progress, one line a second: AWS's weights and health, phase, the metric awsctl saw."""
            last_line, baking = "", False
            while True:
                status = canary().get("status") or {}
                if status.get("phase") == Phase.BAKING and not baking and status.get("lastAppliedSpec") != label:
                    baking = True
                    record.marks.append((record.now(), "BAKE"))
                    if on_bake:
                        on_bake()
                rule = (status.get("listenerRule") or {}).get("arn")
                actions = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"] if rule else []
                weights = weights_of(actions)
                total = sum(weights.values()) or 1
                canary_arn = status["targetGroups"]["canary"][0]
                share = 100.0 * weights.get(canary_arn, 0) / total
                traffic.canary_weight = share
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
                record.success.append(metric["value"] if metric and share > 0 else None)
                rate = f"{metric['value']:.1f}%" if metric else "-"
                alarm = next((a["state"] for a in status.get("alarms") or ()), "-")
                line = (
                    f"    {record.now():5.1f}s  {status.get('phase', ''):<16} canary {share:5.1f}% alarm {alarm} "
                    f"(ALB {weights.get(canary_arn, 0)}/{total})  {'  '.join(health)}  success {rate}"
                )
                if line.split("s ", 1)[1] != last_line:
                    print(line, flush=True)
                    last_line = line.split("s ", 1)[1]
                if status.get("phase") in until and status.get("lastAppliedSpec") != label:
                    return status
                time.sleep(1.0)

        _step(
            f"rolling out {GOOD}: healthy metrics, the weights step up, a {BAKE_SECONDS} s bake at 100%, then promotion"
        )
        promoted_from = canary()["status"]["lastAppliedSpec"]
        record.marks.append((record.now(), "V2"))
        traffic.error_rate = 0.0
        apps.patch_namespaced_deployment(
            "web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": GOOD}]}}}}
        )
        good = follow(FINISHED, promoted_from)
        primary_image = apps.read_namespaced_deployment("web-primary", NS).spec.template.spec.containers[0].image
        print(f"    {good['phase']}: web-primary now runs {primary_image}")

        _step(f"rolling out {BAD}: fine at small weights, failing under full load; its alarm fires during the bake")
        record.marks.append((record.now(), "V3"))
        traffic.error_rate = 0.0

        def overload() -> None:
            """At 100% the new version's connection pool runs out: 30% 5xx, and the alarm fires."""
            traffic.error_rate = 0.30
            cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx above 50 per minute")
            print(f"    {record.now():5.1f}s  {ALARM} -> ALARM", flush=True)

        apps.patch_namespaced_deployment(
            "web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": BAD}]}}}}
        )
        bad = follow(FINISHED, good["lastAppliedSpec"], on_bake=overload)
        primary_image = apps.read_namespaced_deployment("web-primary", NS).spec.template.spec.containers[0].image
        print(f"    {bad['phase']}: {bad.get('message', '')}")
        print(f"    web-primary still runs {primary_image}: it stayed warm through the bake, no capacity gap")

        _step("awsctl status")
        subprocess.run([sys.executable, "-m", "awsctl", "status", "-n", NS], check=False)

        from awsctl.demo.plot import BLUE, RED, chart

        png = chart(
            state_dir / "canary.png",
            record.times,
            [("CANARY WEIGHT %", record.weights, BLUE), ("SUCCESS RATE %", record.success, RED)],
            record.marks,
        )
        _step("summary")
        print(f"    ALB from {how}; {GOOD} {good['phase']}, {BAD} {bad['phase']}")
        print(f"    weights stepped {sorted({round(w, 1) for w in record.weights})} (percent, as AWS showed them)")
        print(f"    plot of canary weight and success rate: {png}")
        print(f"    demo finished in {time.monotonic() - started:.1f}s")
        ok = good["phase"] == Phase.SUCCEEDED and bad["phase"] == Phase.FAILED
        return 0 if ok else 1
    finally:
        if traffic:
            traffic.stop()
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
