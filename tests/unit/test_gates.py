"""Readiness gates: which pods get which gate, and the webhook configuration awsctl manages."""

import base64

from awsctl.controllers.readiness_gates import WebhookOptions, client_config, configuration
from awsctl.planning.gates import readiness_gates
from awsctl.planning.objects import primary_deployment

SERVICES = [("web", {"app": "web"}), ("all", {"tier": "front"}), ("none", {})]
BINDINGS = {"web": ["web-a", "web-b"], "all": ["front"]}


def test_one_gate_per_binding_whose_service_selects_the_pod():
    gates = readiness_gates({"app": "web", "tier": "front"}, SERVICES, lambda s: BINDINGS.get(s, ()), None)
    assert [g["conditionType"] for g in gates] == [
        "target-health.awsctl.io/front",
        "target-health.awsctl.io/web-a",
        "target-health.awsctl.io/web-b",
    ]


def test_existing_gates_are_kept_and_nothing_missing_means_no_patch():
    mine = [{"conditionType": "example.com/ready"}]
    gates = readiness_gates({"app": "web"}, SERVICES, lambda s: ["web-a"] if s == "web" else (), mine)
    assert gates == [{"conditionType": "example.com/ready"}, {"conditionType": "target-health.awsctl.io/web-a"}]
    assert readiness_gates({"app": "web"}, SERVICES, lambda s: ["web-a"] if s == "web" else (), gates) is None
    assert readiness_gates({"app": "other"}, SERVICES, lambda s: BINDINGS.get(s, ()), None) is None


def test_webhook_configuration_opts_namespaces_in_and_fails_open():
    config = configuration(WebhookOptions(port=9443, host="127.0.0.1"), b"CA")
    hook = config["webhooks"][0]
    assert hook["clientConfig"] == {
        "url": "https://127.0.0.1:9443/readiness-gates",
        "caBundle": base64.b64encode(b"CA").decode(),
    }
    assert hook["namespaceSelector"] == {"matchLabels": {"awsctl.io/readiness-gate-injection": "enabled"}}
    assert hook["failurePolicy"] == "Ignore" and hook["rules"][0]["operations"] == ["CREATE"]
    in_cluster = client_config(WebhookOptions(port=9443, service="awsctl-system/awsctl-webhook"), b"CA")
    assert in_cluster["service"] == {
        "namespace": "awsctl-system",
        "name": "awsctl-webhook",
        "port": 9443,
        "path": "/readiness-gates",
    }


def test_the_generated_primary_carries_its_bindings_gate():
    target = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app"}]}},
        },
    }
    canary = {"metadata": {"name": "web", "uid": "u"}, "apiVersion": "awsctl.io/v1alpha1", "kind": "Canary"}
    dep = primary_deployment(target, canary, 2, "target-health.awsctl.io/web-primary")
    assert dep["spec"]["template"]["spec"]["readinessGates"] == [
        {"conditionType": "target-health.awsctl.io/web-primary"}
    ]
    assert "readinessGates" not in primary_deployment(target, canary, 2)["spec"]["template"]["spec"]


def test_a_gated_pod_stays_desired_until_the_kubelet_turns_it_ready():
    """Between the gate turning True and the pod turning Ready the pod is neither serving nor waiting
    on the gate; it must stay registered (a fresh-clone run once deregistered it in that window)."""
    from awsctl.controllers.binding_reconciler import gate_open, waits_only_on

    gate = "target-health.awsctl.io/web"

    def pod(**conditions):
        return {
            "metadata": {"name": "p"},
            "spec": {"readinessGates": [{"conditionType": gate}]},
            "status": {"conditions": [{"type": t, "status": v} for t, v in conditions.items()]},
        }

    starting = pod(ContainersReady="True", Ready="False")
    opened = pod(ContainersReady="True", Ready="False", **{gate: "True"})
    assert waits_only_on(starting, gate) and not gate_open(starting, gate)
    assert waits_only_on(opened, gate) and gate_open(opened, gate)  # still desired: Ready lags the gate
    assert not waits_only_on(pod(ContainersReady="False", **{gate: "True"}), gate)  # the app broke
    assert not waits_only_on({**opened, "metadata": {"deletionTimestamp": "now"}}, gate)
    assert not waits_only_on(pod(ContainersReady="True"), "target-health.awsctl.io/other")


def test_a_webhook_that_redirects_fails_and_the_redirect_is_never_followed():
    """The operator calls from inside the cluster: a 3xx followed would carry its request to an address the
    Canary's author could not name directly. A redirect is an answer above 202: the gate fails."""
    from awsctl.analysis import webhooks
    from awsctl.api.canary import Webhook
    from tests.webhooks import webhook_server

    with webhook_server() as hooks:
        for status in (301, 302, 307, 308):
            hooks.respond("/gate", status)
            hooks.location["/gate"] = f"{hooks.url}/elsewhere"
            result = webhooks.call(Webhook("gate", "rollout", f"{hooks.url}/gate", 2.0, {}), {"name": "web"})
            assert not result.ok and f"answered {status}" in result.detail
        assert hooks.received("/elsewhere") == [] and len(hooks.received("/gate")) == 4
