import copy

import pytest

from awsctl.planning import naming, objects

CANARY = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1"}}
TARGET = {
    "metadata": {"name": "web", "namespace": "ns", "labels": {"team": "a"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web", "v": "1"}},
            "spec": {"containers": [{"name": "app", "image": "img:1"}]},
        },
    },
}
HEADLESS = {"spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "targetPort": 8000, "nodePort": 1}]}}


def test_primary_deployment_rewrites_selector_labels_only():
    primary = objects.primary_deployment(TARGET, CANARY, replicas=3)
    assert primary["metadata"]["name"] == "web-primary"
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "web-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"] == {"app": "web-primary", "v": "1"}
    assert primary["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert TARGET["spec"]["template"]["metadata"]["labels"]["app"] == "web"  # input untouched


SLEEP_15 = {"preStop": {"sleep": {"seconds": 15}}}
OWN_HOOK = {"preStop": {"exec": {"command": ["/bin/drain"]}}}


@pytest.mark.parametrize(
    ("pod", "delay", "lifecycles", "grace"),
    [
        ({"containers": [{"name": "a"}]}, 15, [SLEEP_15], 45),  # 30 s by default, plus the delay
        ({"containers": [{"name": "a"}], "terminationGracePeriodSeconds": 60}, 15, [SLEEP_15], 75),
        ({"containers": [{"name": "a", "lifecycle": OWN_HOOK}]}, 15, [OWN_HOOK], None),  # the user's hook stays
        (
            {"containers": [{"name": "a", "lifecycle": OWN_HOOK}, {"name": "b"}]},
            5,
            [OWN_HOOK, {"preStop": {"sleep": {"seconds": 5}}}],
            35,
        ),
        (
            {"containers": [{"name": "a", "lifecycle": {"postStart": {"sleep": {"seconds": 1}}}}]},
            15,
            [{"postStart": {"sleep": {"seconds": 1}}, **SLEEP_15}],
            45,
        ),
        ({"containers": [{"name": "a"}]}, 0, [None], None),  # 0: nothing added
    ],
)
def test_the_primary_keeps_serving_while_its_target_is_deregistered(pod, delay, lifecycles, grace):
    before = copy.deepcopy(pod)
    target = {**TARGET, "spec": {**TARGET["spec"], "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod}}}
    made = objects.primary_deployment(target, CANARY, 2, termination_delay=delay)["spec"]["template"]["spec"]
    assert [c.get("lifecycle") for c in made["containers"]] == lifecycles
    assert made.get("terminationGracePeriodSeconds") == (
        grace if grace is not None else pod.get("terminationGracePeriodSeconds")
    )
    assert pod == before  # the target's template is left as it was


def _target(pod: dict) -> dict:
    return {"metadata": {"name": "web"}, "spec": {"template": {"spec": pod}}}


@pytest.mark.parametrize(
    ("pod", "drain", "reason"),
    [
        ({"containers": [{"name": "app"}]}, 30, "NoTerminationDelay"),
        ({"containers": [{"name": "app", "lifecycle": SLEEP_15}, {"name": "sidecar"}]}, 30, "NoTerminationDelay"),
        ({"containers": [{"name": "app", "lifecycle": SLEEP_15}]}, 30, None),  # grace 30 s covers a 30 s drain
        ({"containers": [{"name": "app", "lifecycle": SLEEP_15}]}, 300, "DrainLongerThanGrace"),
        ({"containers": [{"name": "app", "lifecycle": OWN_HOOK}], "terminationGracePeriodSeconds": 400}, 300, None),
    ],
)
def test_what_deleting_the_canarys_pods_can_cost(pod, drain, reason):
    gap = objects.termination_gap(_target(pod), 15, drain)
    assert (gap[0] if gap else None) == reason
    if reason == "NoTerminationDelay":
        assert "lifecycle.preStop.sleep.seconds: 15" in gap[1]


@pytest.mark.parametrize(
    ("hook", "reason"),
    [
        ({"preStop": {"sleep": {"seconds": 5}}}, "TerminationDelayTooShort"),
        ({"preStop": {"exec": {"command": ["sleep", "10"]}}}, "TerminationDelayTooShort"),
        ({"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 29"]}}}, "TerminationDelayTooShort"),
        ({"preStop": {"sleep": {"seconds": 30}}}, None),
        ({"preStop": {"exec": {"command": ["/bin/drain"]}}}, None),  # not a sleep: its length is not known
    ],
)
def test_a_canary_pod_that_stops_before_the_load_balancers_nodes_let_go_is_said(hook, reason):
    """The nodes apply a deregistration up to propagationSeconds (30 s) late: a shorter preStop sleep stops
    a pod they still send requests to."""
    pod = {"containers": [{"name": "app", "lifecycle": hook}], "terminationGracePeriodSeconds": 60}
    gap = objects.termination_gap(_target(pod), 30, 30, propagation=30)
    assert (gap[0] if gap else None) == reason
    if reason:
        assert "spec.loadBalancer.propagationSeconds (30 s)" in gap[1] and "Sleep at least 30 s" in gap[1]
    bare = objects.termination_gap(_target({"containers": [{"name": "app"}]}), 15, 30, propagation=30)
    assert bare is not None and "lifecycle.preStop.sleep.seconds: 30" in bare[1]  # the advice agrees with it


def test_template_hash_ignores_replicas():
    scaled = {**TARGET, "spec": {**TARGET["spec"], "replicas": 0}}
    assert objects.template_hash(scaled) == objects.template_hash(TARGET)
    changed = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "img:2"}]}}}}
    assert objects.template_hash(changed) != objects.template_hash(TARGET)


def test_generated_services_stay_headless_and_keep_ports():
    ports = objects.service_ports(HEADLESS, 80, 8000)
    services = objects.generated_services(
        CANARY, "web", {"app": "web"}, ports, headless=True, node_port=False, user_service=HEADLESS
    )
    assert [s["metadata"]["name"] for s in services] == ["web-primary", "web-canary"]  # the user's apex is theirs
    for svc in services:
        assert svc["spec"]["clusterIP"] == "None"
        assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8000}]
    assert services[0]["spec"]["selector"] == {"app": "web-primary"}
    assert services[1]["spec"]["selector"] == {"app": "web"}


def test_ordinary_services_get_an_assigned_cluster_ip():
    services = objects.generated_services(
        CANARY,
        "web",
        {"app": "web"},
        objects.service_ports(None, 80, 8080),
        headless=False,
        node_port=False,
        user_service=None,
    )
    assert [s["metadata"]["name"] for s in services] == ["web-primary", "web-canary", "web"]
    assert all("clusterIP" not in s["spec"] and s["spec"]["type"] == "ClusterIP" for s in services)
    assert services[2]["spec"]["selector"] == {"app": "web-primary"}


def test_target_group_names_are_short_valid_and_stable():
    name = naming.target_group_name("cluster", "a-very-long-namespace-name", "checkout-service", "primary", "svc")
    assert len(name) <= 32 and name.endswith("-p") and not name.startswith("-")
    assert name == naming.target_group_name(
        "cluster", "a-very-long-namespace-name", "checkout-service", "primary", "svc"
    )
    assert name != naming.target_group_name("other", "a-very-long-namespace-name", "checkout-service", "primary", "svc")
    assert naming.target_group_name("c", "ns", "web", "canary", "svc").startswith("ns-web-")


def test_spec_changed_until_status_records_the_generation():
    body = {"metadata": {"generation": 3}, "status": {"observedGeneration": 2}}
    assert objects.spec_changed(body)
    assert not objects.spec_changed({**body, "status": {"observedGeneration": 3}})
    assert objects.spec_changed({"metadata": {"generation": 1}})  # never recorded


def test_a_services_ip_family_names_its_target_groups_family():
    from awsctl.planning.objects import ip_family

    assert ip_family({"spec": {"ipFamilies": ["IPv6", "IPv4"]}}) == "ipv6"  # dual-stack: the first family
    assert ip_family({"spec": {"ipFamilies": ["IPv4"]}}) == "ipv4"
    assert ip_family({"spec": {}}) is None and ip_family(None) is None
