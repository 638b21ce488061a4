"""The boto3 adapter against a real moto server over HTTP."""

import pytest
from botocore.exceptions import ClientError

from awsctl.aws.clients import CallCounter, Clients
from awsctl.aws.targets import TargetGroupNotFound, TargetGroups
from awsctl.planning.targets import Target, batches, plan_targets

pytestmark = pytest.mark.aws


@pytest.fixture
def counted(moto):
    counter = CallCounter()
    return TargetGroups(Clients(counter)), counter


def test_describe_by_name_and_arn_is_cached(moto, counted):
    groups, counter = counted
    arn = moto.target_group("web-tg")
    by_name = groups.describe("web-tg")
    assert by_name.arn == arn and by_name.target_type == "ip" and by_name.vpc_id
    assert groups.describe(arn).name == "web-tg"
    groups.describe("web-tg")
    # One listing of every group serves both refs (and every other binding starting with them).
    assert counter.snapshot()["DescribeTargetGroups"] == 1
    # A group created after the listing is described on its own, not listed again (at most every 30 s).
    later = moto.target_group("web-tg-later")
    assert groups.describe("web-tg-later").arn == later
    assert counter.snapshot()["DescribeTargetGroups"] == 2


def test_missing_group_is_a_typed_error(moto, counted):
    groups, _ = counted
    with pytest.raises(TargetGroupNotFound):
        groups.describe("nope")
    with pytest.raises(TargetGroupNotFound):
        groups.describe("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef")


def test_vpc_cidrs_come_from_the_groups_vpc(moto, counted):
    groups, _ = counted
    info = groups.describe(moto.target_group("web-tg"))
    assert groups.vpc_cidrs(info.vpc_id) == (moto.default_vpc()["CidrBlock"],)


def test_an_ipv6_vpc_s_ranges_count_and_a_refused_target_reads_them_again(moto, counted):
    """An IPv6 cluster's pod IPs are in the VPC's IPv6 ranges: read only the IPv4 ones, every pod looked
    outside the VPC. A range associated after they were read makes AWS refuse a target: read afresh."""
    groups, counter = counted
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.associate_vpc_cidr_block(VpcId=vpc, AmazonProvidedIpv6CidrBlock=True)
    arn = moto.client("elbv2").create_target_group(
        Name="v6", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip", IpAddressType="ipv6"
    )["TargetGroups"][0]["TargetGroupArn"]
    cidrs = groups.vpc_cidrs(vpc)
    assert cidrs[0] == "10.20.0.0/16" and len(cidrs) == 2 and ":" in cidrs[1] and cidrs[1].endswith("/56")
    assert groups.describe(arn).ip_address_type == "ipv6"
    before = counter.snapshot()["DescribeVpcs"]
    groups.vpc_cidrs(vpc)
    assert counter.snapshot()["DescribeVpcs"] == before  # cached
    with pytest.raises(ClientError) as refused:  # an IPv4 target in an IPv6 group
        groups.register(arn, (Target("10.20.0.5", 80),))
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    groups.vpc_cidrs(vpc)
    assert counter.snapshot()["DescribeVpcs"] == before + 1  # read afresh after the refusal


def test_register_in_batches_then_steady_state_writes_nothing(moto, counted):
    groups, counter = counted
    arn = moto.target_group("big")
    desired = {Target(f"172.31.{i // 200}.{i % 200 + 1}", 8080) for i in range(450)}
    plan = plan_targets(desired, {h.target for h in groups.health(arn)}, frozenset())
    for batch in plan.register:
        groups.register(arn, batch)
    assert counter.snapshot()["RegisterTargets"] == 3
    assert moto.targets(arn) == {(t.id, t.port) for t in desired}

    before = counter.writes()
    again = plan_targets(desired, {h.target for h in groups.health(arn)}, plan.managed_after)
    assert again.writes == 0 and counter.writes() == before


def test_deregister_only_what_was_managed(moto, counted):
    groups, _ = counted
    arn = moto.target_group("shared")
    users = Target("172.31.9.9", 80)
    moto.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[users.to_aws()])
    mine = {Target("172.31.0.1", 80), Target("172.31.0.2", 80)}
    for batch in batches(mine):
        groups.register(arn, batch)
    plan = plan_targets(set(), {h.target for h in groups.health(arn)}, frozenset(t.key for t in mine))
    for batch in plan.deregister:
        groups.deregister(arn, batch)
    assert moto.targets(arn) == {(users.id, users.port)}


def test_out_of_vpc_ip_is_registered_with_az_all(moto, counted):
    groups, _ = counted
    arn = moto.target_group("outside")
    groups.register(arn, (Target("10.244.0.5", 8080, "all"),))
    assert moto.targets(arn) == {("10.244.0.5", 8080)}


def test_health_states_are_reported_as_aws_shows_them(moto, counted, realism_clock):
    groups, _ = counted
    arn = moto.target_group("health", listener=moto.listener("health"))
    groups.register(arn, (Target("172.31.0.1", 80), Target("172.31.0.2", 80)))
    moto.unhealthy.add("172.31.0.2")
    assert {h.target.id: h.state for h in groups.health(arn)} == {"172.31.0.1": "initial", "172.31.0.2": "initial"}
    realism_clock.now += 10  # the group's 5 s interval x healthy threshold 2
    states = {h.target.id: h.state for h in groups.health(arn)}
    assert states == {"172.31.0.1": "healthy", "172.31.0.2": "unhealthy"}


def test_instance_targets(moto, counted):
    groups, _ = counted
    ec2 = moto.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    arn = moto.target_group("nodes", target_type="instance")
    groups.register(arn, (Target(instance, 30080),))
    assert groups.describe(arn).target_type == "instance"
    assert moto.targets(arn) == {(instance, 30080)}


class StatusSink:
    """Just enough of Kube for BindingReconciler._apply: it records the status writes."""

    def __init__(self):
        self.patches = []

    def patch_status(self, plural, namespace, name, status, resource_version=None):
        self.patches.append(status)
        return {"metadata": {"resourceVersion": str(len(self.patches))}}

    def event(self, *args, **kwargs):
        pass


def test_a_target_still_draining_is_registered_again(moto, realism_clock):
    """A new pod can get the IP:port of one that just left; AWS still lists that target as draining,
    so it must count as absent, not as registered (the LBC splits draining targets out too)."""
    from awsctl.aws.clients import Clients as C
    from awsctl.controllers.binding_reconciler import BindingReconciler

    groups = TargetGroups(C())
    arn = moto.target_group("drain", listener=moto.listener("drain"))
    reconciler = BindingReconciler(StatusSink(), groups)
    body = {"metadata": {"namespace": "ns", "name": "b"}}
    target = Target("10.244.0.9", 8080)
    info = groups.describe(arn)
    reconciler._apply(body, info, {target}, groups.health(arn), frozenset(), None)
    groups.deregister(arn, (target,))
    assert moto.target_states(arn)[("10.244.0.9", 8080)] == "draining"
    outcome = reconciler._apply(body, info, {target}, groups.health(arn), frozenset({target.key}), None)
    assert outcome.writes == 1 and moto.target_states(arn)[("10.244.0.9", 8080)] == "initial"
    # Health is read again when the new registration can first pass: 2 checks 5 s apart.
    assert outcome.desired == 1 and outcome.states == {"initial": 1} and outcome.recheck == 10.0
    assert outcome.idle_recheck is None

    # Healthy: nothing is on its way, so the binding comes back only on its drift timer (an hour on
    # average, spread over the bindings), never on the resync sweep's clock.
    realism_clock.now += 10
    settled = reconciler._apply(body, info, {target}, groups.health(arn), frozenset({target.key}), None)
    assert settled.states == {"healthy": 1} and settled.recheck is None
    assert 1800 <= (settled.idle_recheck or 0) <= 5400


def test_an_ip_outside_the_vpc_goes_in_its_nodes_zone_when_the_group_turns_cross_zone_off(moto, counted):
    """AWS refuses AvailabilityZone "all" for a group with cross-zone load balancing off; the LBC retries in
    the node's zone, and so does awsctl (learnt once per group: no attribute read for the others)."""
    groups, counter = counted
    arn = moto.target_group("zonal")
    elbv2 = moto.client("elbv2")
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{"Key": "load_balancing.cross_zone.enabled", "Value": "false"}]
    )
    slices = [
        {
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 8080}],
            "endpoints": [{"addresses": ["10.244.2.7"], "conditions": {"ready": True}, "zone": "us-east-1c"}],
        }
    ]
    cidrs = groups.vpc_cidrs(groups.describe(arn).vpc_id)
    (target,) = plan_ip(slices, cidrs, groups.zonal(arn))
    assert target.availability_zone == "all" and target.zone_hint == "us-east-1c"
    groups.register(arn, (target,))  # refused as "all", registered again in us-east-1c
    assert groups.zonal(arn)
    shown = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert [d["Target"]["Id"] for d in shown] == ["10.244.2.7"]
    (later,) = plan_ip(slices, cidrs, groups.zonal(arn))
    assert later.availability_zone == "us-east-1c"  # from now on, straight in its zone
    assert "DescribeTargetGroupAttributes" not in counter.snapshot()


def plan_ip(slices, cidrs, zonal):
    from awsctl.planning.targets import desired_ip_targets

    return sorted(desired_ip_targets(slices, "", cidrs, "ipv4", frozenset(), zonal), key=lambda t: t.key)


def test_a_conflict_while_withdrawing_runs_the_reconcile_again(moto):
    """The Service is gone, so the binding deregisters what it registered and writes managedTargets over the
    version it read; another writer since is a conflict, and the reconcile runs again shortly (it was an
    error before, retried as a failure)."""
    from awsctl.aws.clients import Clients as C
    from awsctl.controllers.binding_reconciler import BindingReconciler
    from awsctl.kube.client import ApiError

    groups = TargetGroups(C())
    arn = moto.target_group("withdraw")
    target = Target("10.244.0.9", 8080)
    groups.register(arn, (target,))

    class Stale(StatusSink):
        body = {
            "metadata": {"namespace": "ns", "name": "b", "resourceVersion": "7"},
            "spec": {"serviceRef": {"name": "gone", "port": 80}, "targetGroupARN": arn},
            "status": {"managedTargets": [target.key]},
        }

        def get_custom(self, plural, namespace, name):
            return self.body

        def get_service(self, namespace, name):
            return None

        def patch_status(self, plural, namespace, name, status, resource_version=None):
            if resource_version is not None:
                raise ApiError(409, "Conflict", "{}")
            return super().patch_status(plural, namespace, name, status)

    outcome = BindingReconciler(Stale(), groups).reconcile("ns", "b")
    assert outcome is not None and outcome.reason == "Conflict" and outcome.recheck == 0.5
    assert ("10.244.0.9", 8080) not in moto.targets(arn)  # deregistered before the conflict


def test_a_binding_writes_only_into_a_group_granted_to_it_that_the_lbc_does_not_manage(moto):
    """Any binding registered pods into any group in the account, the LBC's included (the two controllers
    then deregister each other's targets for ever). Refused with a condition naming the field, and no
    target registered; a group awsctl made for a Canary of the same namespace needs no grant of its own."""
    from awsctl.api.grant import Grant
    from awsctl.aws.clients import Clients as C
    from awsctl.controllers.binding_reconciler import BindingReconciler
    from awsctl.controllers.grants import Grants
    from awsctl.planning import naming

    elbv2 = moto.client("elbv2")
    lbcs, yours, theirs, canarys = (moto.target_group(n) for n in ("k8s-shop-web", "shop-web", "pay-web", "t-c"))
    elbv2.add_tags(ResourceArns=[lbcs], Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": "prod"}])
    owned = naming.owner_tags("test", "Canary", "shop", "web", "canary")
    elbv2.add_tags(ResourceArns=[canarys], Tags=[{"Key": k, "Value": v} for k, v in owned.items()])

    class Kube(StatusSink):
        def __init__(self, group):
            super().__init__()
            self.events = []
            self.body = {
                "metadata": {"namespace": "shop", "name": "b", "resourceVersion": "7"},
                "spec": {"serviceRef": {"name": "web", "port": 80}, "targetGroupARN": group},
            }

        def get_custom(self, plural, namespace, name):
            return self.body

        def get_service(self, namespace, name):
            return {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "clusterIP": "None"}}

        def list_custom(self, plural, namespace, label_selector=None):
            spec = {"namespaces": {"names": ["shop"]}, "targetGroups": ["shop-*", "k8s-*"]}
            return [{"metadata": {"name": "shop"}, "spec": spec}]

        def namespace_labels(self, namespace):
            return {}

        def endpoint_slices(self, namespace, service):
            return [
                {
                    "addressType": "IPv4",
                    "ports": [{"name": "", "port": 8080}],
                    "endpoints": [{"addresses": ["10.244.0.7"], "conditions": {"ready": True}}],
                }
            ]

        def event(self, obj, *, type, reason, message):
            self.events.append((type, reason, message))

    assert Grant.parse("shop", Kube("").list_custom("", None)[0]["spec"]).target_groups == ("shop-*", "k8s-*")
    table = [
        # (group, refused reason or None, field)
        (lbcs, "ManagedByLoadBalancerController", "spec.targetGroupARN"),  # granted, but the LBC's
        (theirs, "NotGranted", "spec.targetGroupARN"),
        (yours, None, ""),
        (canarys, None, ""),  # its own Canary's (same namespace, same cluster)
    ]
    for group, reason, field in table:
        kube = Kube(group)
        groups = TargetGroups(C())
        outcome = BindingReconciler(kube, groups, grants=Grants(kube), cluster="test").reconcile("shop", "b")  # type: ignore[arg-type]
        assert outcome is not None, group
        if reason is None:
            assert outcome.registered == 1 and moto.targets(group) == {("10.244.0.7", 8080)}, (group, outcome)
            continue
        assert outcome.reason == reason and moto.targets(group) == set(), (group, outcome)
        (ready,) = [c for p in kube.patches for c in p.get("conditions") or () if c["type"] == "Ready"][-1:]
        assert ready["status"] == "False" and ready["message"].startswith(field), ready
        assert [e[1] for e in kube.events] == [reason]
