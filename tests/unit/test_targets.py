import pytest

from awsctl.planning.targets import (
    MAX_TARGETS_PER_CALL,
    PortNotFound,
    Target,
    batches,
    desired_instance_targets,
    desired_ip_targets,
    instance_id_from_provider_id,
    plan_removal,
    plan_targets,
    select_service_port,
    unserved_pods,
)


def slice_(port_name, port, endpoints):
    return {
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }


def ep(ip, ready=True, terminating=False, pod=None):
    out = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": terminating}}
    if pod:
        out["targetRef"] = {"kind": "Pod", "name": pod}
    return out


def test_ip_targets_use_the_endpoint_port_never_the_service_port():
    slices = [slice_("http", 8000, [ep("10.0.0.1"), ep("10.0.0.2")])]
    assert desired_ip_targets(slices, "http", ["10.0.0.0/16"]) == {Target("10.0.0.1", 8000), Target("10.0.0.2", 8000)}


def test_named_target_port_resolves_per_pod():
    # One Service port `http` (port 80, targetPort: web); the pods name different container ports `web`.
    slices = [slice_("http", 8080, [ep("10.0.0.1")]), slice_("http", 9090, [ep("10.0.0.2")])]
    assert desired_ip_targets(slices, "http", ["10.0.0.0/8"]) == {Target("10.0.0.1", 8080), Target("10.0.0.2", 9090)}


def test_only_ready_non_terminating_endpoints():
    slices = [
        slice_(
            "",
            80,
            [
                ep("10.0.0.1"),
                ep("10.0.0.2", ready=False),
                ep("10.0.0.3", terminating=True),
                {"addresses": ["10.0.0.4"], "conditions": {}},  # nil ready means ready
                ep("10.0.0.5", pod="going", terminating=True),
            ],
        )
    ]
    got = desired_ip_targets(slices, "", ["10.0.0.0/8"])
    assert got == {Target("10.0.0.1", 80), Target("10.0.0.4", 80)}


def test_slices_for_other_ports_are_ignored():
    slices = [slice_("metrics", 9100, [ep("10.0.0.1")])]
    assert desired_ip_targets(slices, "http", []) == set()


def test_ips_outside_the_vpc_get_availability_zone_all():
    slices = [slice_("", 80, [ep("10.0.0.1"), ep("100.64.0.9")])]
    got = desired_ip_targets(slices, "", ["10.0.0.0/16"])
    assert got == {Target("10.0.0.1", 80), Target("100.64.0.9", 80, "all")}


def test_service_port_by_number_or_name():
    ports = [{"name": "http", "port": 80, "targetPort": 8000}, {"name": "admin", "port": 9000, "nodePort": 30900}]
    assert select_service_port(ports, 80).name == "http"
    assert select_service_port(ports, "admin").node_port == 30900
    with pytest.raises(PortNotFound, match="spec.serviceRef.port 8000 matches no Service port"):
        select_service_port(ports, 8000)  # a targetPort is not a Service port


def test_instance_targets_from_provider_ids_of_ready_nodes():
    def node(pid, ready=True, unschedulable=False):
        return {
            "spec": {"providerID": pid, "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
        }

    nodes = [
        node("aws:///us-east-1a/i-0aaa"),
        node("aws:///us-east-1b/i-0bbb", ready=False),
        node("kind://docker/x"),
        node("aws:///us-east-1c/i-0ccc", unschedulable=True),
    ]
    assert desired_instance_targets(nodes, 30080) == {Target("i-0aaa", 30080)}
    assert instance_id_from_provider_id("aws:///us-east-1a/i-0123456789abcdef0") == "i-0123456789abcdef0"
    assert instance_id_from_provider_id(None) is None


def test_plan_registers_before_deregistering_in_batches_of_200():
    desired = {Target(f"10.1.{i // 250}.{i % 250}", 80) for i in range(450)}
    old = {Target(f"10.2.{i // 250}.{i % 250}", 80) for i in range(201)}
    plan = plan_targets(desired, old, frozenset(t.key for t in old))
    assert [len(b) for b in plan.register] == [200, 200, 50]
    assert [len(b) for b in plan.deregister] == [200, 1]
    assert all(len(b) <= MAX_TARGETS_PER_CALL for b in plan.register + plan.deregister)
    assert plan.writes == 5  # = ceil(651 / 200) + 1
    assert plan.managed_during >= {t.key for t in desired | old}
    assert plan.managed_after == frozenset(t.key for t in desired)


def test_steady_state_plans_no_write():
    targets = {Target("10.0.0.1", 80), Target("10.0.0.2", 80)}
    plan = plan_targets(targets, set(targets), frozenset(t.key for t in targets))
    assert plan.writes == 0


def test_targets_not_registered_by_the_binding_are_never_deregistered():
    mine, users = Target("10.0.0.1", 80), Target("10.9.9.9", 80)
    plan = plan_targets(set(), {mine, users}, frozenset({mine.key}))
    assert plan.deregister == ((mine,),)
    assert plan_removal({mine, users}, frozenset({mine.key})) == ((mine,),)


def test_batches_are_deterministic():
    targets = [Target("10.0.0.2", 80), Target("10.0.0.1", 80)]
    assert batches(targets) == ((Target("10.0.0.1", 80), Target("10.0.0.2", 80)),)
    assert Target.parse("10.0.0.1:8080") == Target("10.0.0.1", 8080)


def _endpoint(ip, pod, **conditions):
    return {"addresses": [ip], "conditions": conditions, "targetRef": {"kind": "Pod", "name": pod}}


def test_publish_not_ready_addresses_registers_only_serving_endpoints():
    """With publishNotReadyAddresses every endpoint says ready=true; `serving` tells the truth."""
    slices = [
        {
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 8080}],
            "endpoints": [
                _endpoint("10.0.0.1", "a", ready=True, serving=True, terminating=False),
                _endpoint("10.0.0.2", "b", ready=True, serving=False, terminating=False),
                _endpoint("10.0.0.3", "c", ready=True, serving=True, terminating=True),
            ],
        }
    ]
    assert desired_ip_targets(slices, "", ["10.0.0.0/8"]) == {Target("10.0.0.1", 8080)}


def test_a_pod_held_only_by_our_readiness_gate_is_registered():
    slices = [
        {
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 8080}],
            "endpoints": [
                _endpoint("10.0.0.1", "gated", ready=False, serving=False, terminating=False),
                _endpoint("10.0.0.2", "starting", ready=False, serving=False, terminating=False),
            ],
        }
    ]
    assert unserved_pods(slices) == {"gated", "starting"}
    got = desired_ip_targets(slices, "", ["10.0.0.0/8"], gated_pods=frozenset({"gated"}))
    assert got == {Target("10.0.0.1", 8080)}


def test_targets_follow_the_groups_address_family():
    slices = [
        {"addressType": "IPv4", "ports": [{"name": "", "port": 80}], "endpoints": [_endpoint("10.0.0.1", "a")]},
        {"addressType": "IPv6", "ports": [{"name": "", "port": 80}], "endpoints": [_endpoint("fd00::1", "a")]},
    ]
    assert desired_ip_targets(slices, "", []) == {Target("10.0.0.1", 80)}
    assert desired_ip_targets(slices, "", [], ip_address_type="ipv6") == {Target("fd00::1", 80)}


def test_health_is_read_again_only_while_it_can_change():
    from awsctl.planning.targets import next_health_read

    assert next_health_read({"healthy": 3}, False, 10, 3) is None  # settled: drift checks only
    assert next_health_read({"unused": 3}, True, 10, 3) is None  # no rule uses the group: nothing moves
    assert next_health_read({"initial": 1, "healthy": 2}, True, 10, 3) == 30.0  # a new one passes 3 checks first
    assert next_health_read({"initial": 1}, False, 5, 2) == 5.0
    assert next_health_read({"initial": 1}, False, 30, 5) == 10.0  # never more than 10 s apart while waiting
    assert next_health_read({"unhealthy": 1, "healthy": 2}, False, 5, 2) == 60.0  # waits on the app, not AWS


def test_health_after_our_writes_is_known_without_asking():
    from awsctl.aws.targets import TargetHealth
    from awsctl.controllers.binding_reconciler import plan_health_after

    old, new, back = Target("10.0.0.1", 80), Target("10.0.0.2", 80), Target("10.0.0.3", 80)
    health = [TargetHealth(old, "healthy"), TargetHealth(back, "draining")]
    after = {h.target.key: h.state for h in plan_health_after(health, [(new, back)], [(old,)])}
    assert after == {"10.0.0.1:80": "draining", "10.0.0.2:80": "initial", "10.0.0.3:80": "initial"}
    unused = plan_health_after([TargetHealth(old, "unused")], [(new,)], [])
    assert {h.target.key: h.state for h in unused}["10.0.0.2:80"] == "unused"


def test_a_pod_held_by_our_gate_is_starting_until_its_containers_are_ready():
    """Its containers turning ready changes no EndpointSlice, so the binding must look again by itself."""
    from awsctl.controllers.binding_reconciler import starting_behind, waits_only_on

    gate = "target-health.awsctl.io/web"

    def pod(containers_ready, gates=(gate,), deleting=False):
        return {
            "metadata": {"deletionTimestamp": "2026-12-03T08:00:00Z"} if deleting else {},
            "spec": {"readinessGates": [{"conditionType": g} for g in gates]},
            "status": {"conditions": [{"type": "ContainersReady", "status": containers_ready}]},
        }

    assert starting_behind(pod("False"), gate) and not waits_only_on(pod("False"), gate)
    assert not starting_behind(pod("True"), gate) and waits_only_on(pod("True"), gate)
    assert not starting_behind(pod("False", gates=()), gate)  # not ours to wait for
    assert not starting_behind(pod("False", deleting=True), gate)


@pytest.mark.parametrize(
    "health, never",
    [
        # a zone the load balancer does not enable: NotInUse while other targets of the group are checked
        ([("a", "healthy", None), ("c", "unused", "Target.NotInUse")], ["c"]),
        ([("a", "draining", "Target.DeregistrationInProgress"), ("c", "unused", "Target.NotInUse")], ["c"]),
        # no rule forwards to the group: every target NotInUse, and all are checked once one does
        ([("a", "unused", "Target.NotInUse"), ("c", "unused", "Target.NotInUse")], []),
        # an IP AWS cannot use, a stopped instance: never checked, in use or not
        ([("a", "unused", "Target.IpUnusable"), ("b", "unused", "Target.InvalidState")], ["a", "b"]),
        ([("a", "initial", "Elb.RegistrationInProgress"), ("b", "unhealthy", "Target.FailedHealthChecks")], []),
    ],
)
def test_targets_aws_will_never_check(health, never):
    from types import SimpleNamespace

    from awsctl.planning.targets import never_checked

    shown = [SimpleNamespace(id=i, state=s, reason=r) for i, s, r in health]
    assert [h.id for h in never_checked(shown)] == never
