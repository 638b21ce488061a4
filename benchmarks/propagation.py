"""Failed requests per story under the test ground's propagation settings, and the share per step.

Five stories run at once, each in its own namespace on one control plane, one moto and one `awsctl run`,
each under 20 requests a second through its own listener of the local data plane:

- promotion: steps 10% and 50%, promoted, the canary scaled to 0;
- rollback: a rollout webhook fails at 50%, the weight goes back, the canary scaled to 0;
- abort at 50%: `awsctl abort` (its annotation) while a confirm-promotion gate holds the canary at 50%;
- pod churn: two primary pods deleted one after the other (paced as a PodDisruptionBudget would) while it
  steps;
- deletion: your app behind your own group on the listener's default action, a Canary with
  revertOnDeletion held at 50%, then deleted.

Rows: the data plane's setting (`off`, `default`, `harsh`: awsctl.dev.propagation) with the product's
loadBalancer.propagationSeconds at its default (30 s), and one more row, the default ground with the
allowance at 0: that row must show failures, or the test ground could not tell the allowance matters.
Floors: none failed under `off` and `default`. Under `harsh` the figures are measured, not floored: its
nodes take up to 60 s to apply a rule and 120 s a deregistration, past a 30 s allowance.

The share per step is the load generator's own record of which pod answered (a canary pod, or a
primary's), from the moment the slowest node has the weight AWS shows until the next change, the 0%
windows after a rollback included: a leak to the canary would show there.

    python -m benchmarks.propagation [--rows off,default,harsh,allowance-0]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client

from awsctl.dev import propagation
from awsctl.dev.dataplane import DataPlane
from awsctl.dev.load import Load
from awsctl.dev.waiting import wait_until
from benchmarks.common import live_ground, verdict, web_deployment
from tests.webhooks import Hooks, webhook_server

RATE = 20  # requests a second per story: five stories, 100 a second through the data plane
ROWS = {
    "off": ("off", None),
    "default": ("default", None),
    "harsh": ("harsh", None),
    "allowance-0": ("default", 0),
}
STORIES = ("promotion", "rollback", "abort at 50%", "pod churn", "deletion")
HEALTH = {"intervalSeconds": 5, "healthyThresholdCount": 2}


@dataclass
class Outcome:
    story: str
    requests: int = 0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    shares: list[tuple[float, float, int]] = field(default_factory=list)  # (AWS %, measured %, requests)
    error: str = ""


@dataclass
class Story:
    name: str
    ns: str
    api: client.ApiClient
    moto: object
    plane: DataPlane
    hooks: Hooks
    allowance: int | None
    shown: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the load, canary % AWS shows)
    load: Load | None = None

    def start_load(self, listener: str) -> Load:
        self.load = Load(self.plane.wait_listener(listener) + "/", RATE).start()
        return self.load

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def status(self) -> dict:
        return (
            self.custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", self.ns, "canaries", "web").get("status")
            or {}
        )

    def wait_phase(self, phase: str, timeout: float) -> dict:
        wait_until(lambda: self.status().get("phase") == phase, f"{self.ns} {phase}", timeout=timeout, interval=0.5)
        return self.status()

    def replicas(self) -> int:
        return client.AppsV1Api(self.api).read_namespaced_deployment("web", self.ns).spec.replicas or 0

    def canary(self, listener: str, analysis: dict, rule: bool = True, **top) -> dict:
        lb: dict = {
            "listenerARN": listener,
            "targetGroup": {"healthCheck": HEALTH, "deregistrationDelaySeconds": 5},
        }
        if rule:
            lb["rule"] = {"priority": 10}
        if self.allowance is not None:
            lb["propagationSeconds"] = self.allowance
        spec = {
            "targetRef": {"name": "web"},
            "service": {"port": 80, "targetPort": 8080},
            "loadBalancer": lb,
            "analysis": {"interval": "5s", **analysis},
            **top,
        }
        return {"apiVersion": "awsctl.io/v1alpha1", "kind": "Canary", "metadata": {"name": "web"}, "spec": spec}

    def held(self, listener: str, **top) -> dict:
        """Held at 50% by a confirm-promotion gate that says no."""
        self.hooks.respond(f"/{self.ns}/promote", 403)
        gate = {"name": "gate", "type": "confirm-promotion", "url": f"{self.hooks.url}/{self.ns}/promote"}
        return self.canary(listener, {"stepWeights": [10, 50], "webhooks": [gate]}, **top)

    def sample(self, rule: str, group: str, load: Load, until: Callable[[], bool], timeout: float) -> None:
        """Samples the canary weight AWS shows every 0.2 s until `until()`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.shown.append((time.monotonic() - load.started, self.moto.forward_weights(rule).get(group, 0) / 10))
            if until():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.ns}: the story did not finish within {timeout:.0f}s")


def set_up(story: Story, pre_stop: int | None = None) -> str:
    """The namespace, your Deployment (2 pods, v1; `pre_stop`: a preStop sleep of that many seconds on them) and
    Service, a listener; returns the listener's ARN."""
    core, apps = client.CoreV1Api(story.api), client.AppsV1Api(story.api)
    core.create_namespace({"metadata": {"name": story.ns}})
    wait_until(lambda: core.list_namespaced_service_account(story.ns).items, "namespace", timeout=30, interval=1.0)
    deployment = web_deployment(2)
    if pre_stop is not None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    apps.create_namespaced_deployment(story.ns, deployment)
    labels = deployment["spec"]["selector"]["matchLabels"]
    core.create_namespaced_service(
        story.ns,
        {"metadata": {"name": "web"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
    )
    return story.moto.listener(story.ns)


def to_v2(story: Story) -> None:
    container = {**web_deployment(2)["spec"]["template"]["spec"]["containers"][0], "image": "bench/app:v2"}
    client.AppsV1Api(story.api).patch_namespaced_deployment(
        "web", story.ns, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )


def started(story: Story, listener: str, spec: dict) -> tuple[str, str, Load]:
    """Creates the Canary, waits for Initialized and for its new rule to reach every node, starts the load."""
    story.custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", story.ns, "canaries", spec)
    st = story.wait_phase("Initialized", timeout=400)
    time.sleep(story.plane.propagation.rule_seconds[1])
    return st["listenerRule"]["arn"], st["targetGroups"]["canary"][0], story.start_load(listener)


def settled(story: Story, load: Load) -> None:
    wait_until(lambda: story.replicas() == 0, f"{story.ns} scaled to 0", timeout=400, interval=0.5)
    time.sleep(10)  # the canary's pods stop; the primary serves on


def rolled_back(story: Story, rule: str, group: str, load: Load) -> Load:
    """Samples through the rollback and the canary's scale-down, then 10 s more of load."""
    story.sample(rule, group, load, lambda: story.status().get("phase") == "Failed", 300)
    story.sample(rule, group, load, lambda: story.replicas() == 0, 400)
    time.sleep(10)
    return load


def promotion(story: Story) -> Load:
    listener = set_up(story)
    rule, group, load = started(story, listener, story.canary(listener, {"stepWeights": [10, 50]}))
    to_v2(story)
    story.sample(rule, group, load, lambda: story.status().get("phase") == "Succeeded", 900)
    settled(story, load)
    return load


def rollback(story: Story) -> Load:
    listener = set_up(story)
    path = f"/{story.ns}/check"
    story.hooks.respond(path, 200)
    check = {"name": "check", "type": "rollout", "url": f"{story.hooks.url}{path}"}
    spec = story.canary(listener, {"stepWeights": [10, 50, 60], "threshold": 1, "webhooks": [check]})
    rule, group, load = started(story, listener, spec)
    to_v2(story)
    story.sample(rule, group, load, lambda: story.status().get("canaryWeight") == 50, 900)
    story.hooks.respond(path, 500)
    return rolled_back(story, rule, group, load)


def abort(story: Story) -> Load:
    listener = set_up(story)
    rule, group, load = started(story, listener, story.held(listener))
    to_v2(story)
    story.sample(rule, group, load, lambda: story.status().get("phase") == "WaitingPromotion", 900)
    asked = f"{story.status()['lastAppliedSpec']} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    story.custom.patch_namespaced_custom_object(
        "awsctl.io", "v1alpha1", story.ns, "canaries", "web", {"metadata": {"annotations": {"awsctl.io/abort": asked}}}
    )
    return rolled_back(story, rule, group, load)


def churn(story: Story) -> Load:
    listener = set_up(story)
    spec = story.canary(listener, {"interval": "10s", "stepWeights": [10, 20, 30, 40, 50]})
    rule, group, load = started(story, listener, spec)
    core, apps = client.CoreV1Api(story.api), client.AppsV1Api(story.api)
    to_v2(story)
    story.wait_phase("Progressing", timeout=300)
    for _ in range(2):
        pods = sorted(
            p.metadata.name
            for p in core.list_namespaced_pod(story.ns, label_selector="app=web-primary").items
            if not p.metadata.deletion_timestamp
        )
        core.delete_namespaced_pod(pods[0], story.ns)

        def whole() -> bool:
            found = apps.read_namespaced_deployment_status("web-primary", story.ns).status
            return (found.available_replicas or 0) == 2 and (found.replicas or 0) == 2

        wait_until(whole, f"{story.ns} primary whole again", timeout=400, interval=0.5)
    story.sample(rule, group, load, lambda: story.status().get("phase") == "Succeeded", 900)
    settled(story, load)
    return load


def deletion(story: Story) -> Load:
    # Your pods serve through your group until every node has the Canary's route, and v2 rolls them right
    # after Initialized: as in the e2e story, they carry the preStop sleep the Canary's GracefulTermination
    # condition asks for (propagationSeconds, 30 s). Without it, late nodes' requests to them are cut (502).
    listener = set_up(story, pre_stop=30)
    moto = story.moto
    yours = moto.target_group(f"{story.ns}-yours"[:32], port=8080)
    moto.client("elbv2").modify_listener(
        ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": yours}]
    )
    binding = {
        "apiVersion": "awsctl.io/v1alpha1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "yours"},
        "spec": {"serviceRef": {"name": "web", "port": 80}, "targetGroupARN": yours},
    }
    story.custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", story.ns, "targetgroupbindings", binding)
    wait_until(
        lambda: moto.target_states(yours) and set(moto.target_states(yours).values()) == {"healthy"},
        f"{story.ns} your group serving",
        timeout=400,
        interval=0.5,
    )
    time.sleep(story.plane.propagation.rule_seconds[1])  # every node forwards to your group
    load = story.start_load(listener)
    spec = story.held(listener, rule=False, revertOnDeletion=True)
    story.custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", story.ns, "canaries", spec)
    story.wait_phase("Initialized", timeout=400)
    to_v2(story)
    story.wait_phase("WaitingPromotion", timeout=900)
    story.custom.delete_namespaced_custom_object("awsctl.io", "v1alpha1", story.ns, "canaries", "web")
    wait_until(
        lambda: not story.custom.list_namespaced_custom_object("awsctl.io", "v1alpha1", story.ns, "canaries")["items"],
        f"{story.ns} the Canary gone",
        timeout=900,
        interval=0.5,
    )
    time.sleep(20)  # the primary's pods stop; yours serve
    return load


RUN = {"promotion": promotion, "rollback": rollback, "abort at 50%": abort, "pod churn": churn, "deletion": deletion}


def shares(story: Story, load: Load, lag: float) -> list[tuple[float, float, int]]:
    """(AWS %, measured canary %, requests) per span of one weight, from when the slowest node has it."""
    spans: list[tuple[float, float, float]] = []
    for at, percent in story.shown:
        if spans and spans[-1][2] == percent:
            spans[-1] = (spans[-1][0], at, percent)
        else:
            spans.append((at, at, percent))
    out = []
    for start, end, percent in spans:
        window = [r for r in load.responses if start + lag <= r.sent <= end and r.pod]
        if window:
            canary = sum(not r.pod.startswith(f"{story.ns}/web-primary-") for r in window)
            out.append((percent, 100.0 * canary / len(window), len(window)))
    return out


def run_row(row: str, stories: list[str]) -> list[Outcome]:
    setting, allowance = ROWS[row]
    ground = propagation.SETTINGS[setting]
    print(
        f"Propagation: row {row} (data plane {setting}, propagationSeconds {allowance if allowance is not None else 30})"
    )
    with live_ground(f"awsctl-bench-prop-{row}-") as (_, api, moto, table), webhook_server() as hooks:
        plane = DataPlane(moto.realism, table.resolve, propagation=ground).start()
        outcomes = {name: Outcome(name) for name in stories}
        loads: dict[str, Load] = {}
        built: dict[str, Story] = {}

        def play(name: str, index: int) -> None:
            story = Story(name, f"p{index}-{row}"[:20], api, moto, plane, hooks, allowance)
            built[name] = story
            try:
                loads[name] = RUN[name](story)
            except Exception as err:  # noqa: BLE001 - a story that could not finish is reported in the table
                outcomes[name].error = f"{type(err).__name__}: {err}"

        try:
            threads = [threading.Thread(target=play, args=(name, i)) for i, name in enumerate(stories)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            for story in built.values():
                if story.load is not None:
                    story.load.stop()
            plane.stop()
        for name, load in loads.items():
            summary = load.summary()
            out = outcomes[name]
            out.requests, out.failed, out.statuses = summary.requests, summary.failures, dict(summary.statuses)
            out.shares = shares(built[name], load, ground.rule_seconds[1])
        for out in outcomes.values():
            line = out.error or f"{out.failed} of {out.requests} failed, statuses {out.statuses}"
            print(f"  {out.story:<14} {line}")
            if out.story in loads and out.failed:  # when, and from what: where to look in the story
                failed = [r for r in loads[out.story].responses if r.failed]
                kinds = sorted({f"{r.status} {r.error or r.version or ''}".strip() for r in failed})
                print(
                    f"      failed from {failed[0].sent:.0f}s to {failed[-1].sent:.0f}s after the load started: "
                    f"{', '.join(kinds)[:300]}"
                )
            for aws, measured, count in out.shares:
                print(f"      AWS {aws:5.1f}%  measured {measured:6.2f}%  ({count} requests)")
        return list(outcomes.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.propagation")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which rows, of {', '.join(ROWS)}")
    parser.add_argument("--stories", default=",".join(STORIES), help=f"which stories, of {', '.join(STORIES)}")
    args = parser.parse_args(argv)
    rows = [r for r in args.rows.split(",") if r]
    stories = [s for s in args.stories.split(",") if s]
    results = {row: run_row(row, stories) for row in rows}
    print("\nFailed requests per story (failed / requests), by the data plane's setting and propagationSeconds:")
    print(f"  {'row':<12} {'ground':<8} {'allowance':>9}  " + "  ".join(f"{s:>14}" for s in stories) + "  floor")
    missed = []
    for row, outcomes in results.items():
        setting, allowance = ROWS[row]
        cells = ["error" if o.error else f"{o.failed}/{o.requests}" for o in outcomes]
        if row == "allowance-0":
            floor = "> 0 somewhere"
            if all(o.failed == 0 for o in outcomes):
                missed.append("the allowance-0 row shows no failure: the test ground cannot tell it matters")
        elif setting == "harsh":
            floor = "measured"
        else:
            floor = "0"
            missed += [
                f"{row}: {o.story} {'did not finish' if o.error else 'failed requests'}"
                for o in outcomes
                if o.error or o.failed
            ]
        allowed = f"{allowance if allowance is not None else 30} s"
        print(f"  {row:<12} {setting:<8} {allowed:>9}  " + "  ".join(f"{c:>14}" for c in cells) + f"  {floor}")
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
