"""The Canary's AWS adapters against a moto server over HTTP: owned target groups, listener rules and
their read-back, the weight step with its invariants, and CloudWatch queries."""

import pytest
from botocore.exceptions import ClientError

from awsctl.analysis import metrics
from awsctl.api.canary import CanarySpec
from awsctl.aws.clients import CallCounter, Clients
from awsctl.aws.cloudwatch import CloudWatch
from awsctl.aws.listeners import Listeners, Route, RuleNotFound, rule_conditions
from awsctl.aws.target_groups import DesiredGroup, OwnedTargetGroups, TargetGroupConflict, TargetGroupInUse
from awsctl.planning import naming
from awsctl.planning import weights as w
from awsctl.routing import alb_wire as wire
from awsctl.routing.alb import AlbRouter as Traffic

pytestmark = pytest.mark.aws
TAGS = naming.owner_tags("test", "Canary", "ns", "web", "primary")


def desired(moto, **overrides):
    fields = dict(
        name="ns-web-0000-p",
        protocol="HTTP",
        port=80,
        vpc_id=moto.default_vpc()["VpcId"],
        target_type="ip",
        health_check={"path": "/healthz"},
        deregistration_delay=30,
        tags=TAGS,
    )
    return DesiredGroup(**{**fields, **overrides})


def test_owned_groups_are_created_adopted_updated_in_place_and_found_by_tags(moto):
    counter = CallCounter()
    owned = OwnedTargetGroups(Clients(counter))
    arn, changed = owned.ensure(desired(moto))
    assert changed
    again, changed = owned.ensure(desired(moto))
    assert again == arn and not changed  # adopted by name and tags, nothing to change: no write
    before = counter.writes()
    _, changed = owned.ensure(desired(moto, health_check={"path": "/ready"}, deregistration_delay=5))
    assert changed and counter.writes() - before == 2  # ModifyTargetGroup + attributes, not a new group
    group = moto.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    assert group["HealthCheckPath"] == "/ready" and group["TargetType"] == "ip"
    assert owned.owned("Canary/ns/web", "test") == [arn]
    assert owned.owned("Canary/ns/web", "other-cluster") == []


def test_a_canary_s_groups_are_found_by_their_arns_and_names_never_by_listing_the_region(moto):
    """Deletion looked up every group in the region and read all their tags, on every attempt."""
    owned = OwnedTargetGroups(Clients())
    recorded, _ = owned.ensure(desired(moto, name="ns-web-0000-p"))
    unrecorded, _ = owned.ensure(desired(moto, name="ns-web-0000-c"))  # created, then a crash before status
    others = [moto.target_group(f"someone-{i}") for i in range(25)]  # the rest of the region
    counter = CallCounter()
    found = OwnedTargetGroups(Clients(counter)).owned_among(
        "Canary/ns/web", "test", [recorded], ["ns-web-0000-p", "ns-web-0000-c", "ns-web-gone-c"]
    )
    assert sorted(found) == sorted([recorded, unrecorded]) and not set(others) & set(found)
    calls = counter.snapshot()
    # One lookup per known ARN or name (an unknown one, gone already, is no error), one DescribeTags.
    assert calls == {"DescribeTargetGroups": 4, "DescribeTags": 1}
    assert owned.owned_among("Canary/ns/web", "other-cluster", [recorded], ["ns-web-0000-c"]) == []


def test_ip_groups_are_created_in_the_services_family(moto):
    """Created groups were always IPv4: on an IPv6 cluster nothing was ever registered."""
    owned = OwnedTargetGroups(Clients())
    arn, _ = owned.ensure(desired(moto, name="ns-web-0006-p", ip_address_type="ipv6"))
    group = moto.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    assert group["IpAddressType"] == "ipv6"
    assert owned.ensure(desired(moto, name="ns-web-0006-p", ip_address_type="ipv6")) == (arn, False)
    with pytest.raises(TargetGroupConflict, match="IpAddressType"):  # AWS cannot change a group's family
        owned.ensure(desired(moto, name="ns-web-0006-p"))


def test_a_group_with_our_name_that_is_not_ours_is_never_taken(moto):
    moto.target_group("ns-web-0000-p")
    with pytest.raises(TargetGroupConflict, match="owned by someone else"):
        OwnedTargetGroups(Clients()).ensure(desired(moto))


def test_rules_weights_read_back_and_the_void_guard(moto):
    listener = moto.listener("adapters")
    primary, canary = moto.target_group("p"), moto.target_group("c")
    listeners = Listeners(Clients())
    assert listeners.vpc_of(listener) == moto.default_vpc()["VpcId"]
    assert listeners.rule_at(listener, 10) is None
    arn = listeners.create_rule(
        listener, 10, rule_conditions(("web.example.com",), ()), [wire.forward_action({primary: 999, canary: 0})], TAGS
    )
    found = listeners.rule_at(listener, 10)
    assert found.arn == arn and found.tags[naming.OWNER] == "Canary/ns/web"

    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "stickiness": {"enabled": True}},
        }
    )
    traffic = Traffic(listeners, sleep=lambda _: None)
    route = Route(arn, False)
    result = traffic.set_route_weight(
        route, spec, [w.Backend(primary)], [w.Backend(canary)], 5, {primary: 2, canary: 1}
    )
    assert result.verified and moto.forward_weights(arn) == {primary: 995, canary: 5}
    assert traffic.shown(route) == ({primary: 995, canary: 5}, (True, 300))
    refused = traffic.set_route_weight(
        route, spec, [w.Backend(primary)], [w.Backend(canary)], 200, {primary: 2, canary: 0}
    )
    assert not refused.verified and refused.shown == 5 and "no healthy targets in c" in refused.message
    assert moto.forward_weights(arn) == {primary: 995, canary: 5}  # nothing was written

    with pytest.raises(TargetGroupInUse):
        OwnedTargetGroups(Clients()).delete(canary)
    listeners.delete_rule(arn)
    listeners.delete_rule(arn)  # already gone is fine
    with pytest.raises(RuleNotFound):
        listeners.actions(route)


def test_cloudwatch_sums_seeded_alb_metrics(moto):
    listener = moto.listener("cw")
    group = moto.target_group("cw-canary")
    check = metrics.MetricCheck("request-success-rate", 10, min=99)
    with moto.traffic(listener, group, requests=100, errors=5, every=0.2):
        import time

        time.sleep(1.0)
    data = CloudWatch(Clients()).metric_data(metrics.queries(check, 0, [group], listener), 30)
    result = metrics.evaluate(check, 0, [group], data)
    assert result.ok is False and result.value == pytest.approx(95.0)


def test_a_route_another_canary_drives_is_refused_not_taken(moto):
    from awsctl.controllers.errors import NotReady

    listener = moto.listener("shared")
    theirs = moto.target_group("theirs-p")
    elbv2 = moto.client("elbv2")
    elbv2.add_tags(ResourceArns=[theirs], Tags=[{"Key": naming.OWNER, "Value": "Canary/other/api"}])
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[wire.forward_action({theirs: 999})])
    spec = CanarySpec.parse(
        {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": listener}}
    )
    recorded = []
    with pytest.raises(NotReady) as err:
        Traffic(Listeners(Clients())).take_route(spec, TAGS, {}, recorded.append)
    assert err.value.reason == "RuleConflict" and "Canary/other/api" in err.value.message
    assert recorded == []  # nothing recorded, nothing changed
    assert moto.forward_weights(listener) == {theirs: 999}


def test_a_rule_of_the_same_canary_in_another_cluster_is_never_adopted(moto):
    """Two clusters share the account and the listener, each with a Canary ns/web: the rule the other
    cluster created is not "ours from before a restart". Refused with a condition naming its cluster."""
    from awsctl.controllers.errors import NotReady

    listener = moto.listener("two-clusters")
    group = moto.target_group("two-clusters-p")
    theirs = moto.client("elbv2").create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=rule_conditions(("web.example.com",), ()),
        Actions=[wire.forward_action({group: 999})],
        Tags=[{"Key": k, "Value": v} for k, v in naming.owner_tags("other", "Canary", "ns", "web").items()],
    )["Rules"][0]
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 10}},
        }
    )
    recorded = []
    with pytest.raises(NotReady) as err:
        Traffic(Listeners(Clients())).take_route(spec, TAGS, {}, recorded.append)
    assert err.value.reason == "RuleConflict" and err.value.field == "spec.loadBalancer.rule.priority"
    assert "belongs to Canary/ns/web of cluster other" in err.value.message
    assert recorded == [] and moto.forward_weights(theirs["RuleArn"]) == {group: 999}


def test_taking_over_a_rule_changes_only_its_forward_action(moto):
    """An authenticate-oidc action in front of the forward stays, in its place, while awsctl drives it."""
    listener = moto.listener("auth")
    users, primary, canary = moto.target_group("auth-u"), moto.target_group("auth-p"), moto.target_group("auth-c")
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com",
            "AuthorizationEndpoint": "https://idp.example.com/auth",
            "TokenEndpoint": "https://idp.example.com/token",
            "UserInfoEndpoint": "https://idp.example.com/user",
            "ClientId": "web",
            "ClientSecret": "s3cret",
        },
    }
    elbv2 = moto.client("elbv2")
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=7,
        Conditions=rule_conditions(("web.example.com",), ()),
        Actions=[oidc, {"Type": "forward", "Order": 2, "TargetGroupArn": users}],
    )["Rules"][0]
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 7, "hosts": ["web.example.com"]}},
        }
    )
    recorded = []
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)
    route = traffic.take_route(spec, TAGS, {}, recorded.append)
    assert recorded[0]["created"] is False and recorded[0]["priority"] == 7
    assert "s3cret" not in recorded[0]["previousActions"]  # AWS never shows it, so status never holds it
    result = traffic.set_route_weight(
        route, spec, [w.Backend(primary)], [w.Backend(canary)], 100, {primary: 1, canary: 1}, owned_route=False
    )
    assert result.verified
    actions = elbv2.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]["Actions"]
    assert [a["Type"] for a in sorted(actions, key=lambda a: a.get("Order") or 0)] == ["authenticate-oidc", "forward"]
    assert actions[0]["AuthenticateOidcConfig"]["Issuer"] == "https://idp.example.com"
    assert moto.forward_weights(rule["RuleArn"]) == {primary: 900, canary: 100}
    # Deletion gives back exactly what was found; read back without the secret, it says to keep it (a plain
    # resend is a ValidationError, and deletion looped forever).
    traffic.restore({"listenerRule": recorded[0]})
    restored = elbv2.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]["Actions"]
    assert moto.forward_weights(rule["RuleArn"]) == {users: 1} and restored[0]["Type"] == "authenticate-oidc"


def test_warm_up_rule_puts_groups_in_use_and_goes(moto, realism_clock):
    listener = moto.listener("warm")
    primary, canary = moto.target_group("warm-p"), moto.target_group("warm-c")
    moto.client("elbv2").register_targets(TargetGroupArn=primary, Targets=[{"Id": "10.0.0.1", "Port": 80}])
    assert set(moto.target_states(primary).values()) == {"unused"}
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 3}},
        }
    )
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)
    arn, wrote = traffic.attach(spec, "uid-1", {primary: 999, canary: 0}, TAGS)
    assert wrote
    assert traffic.attach(spec, "uid-1", {primary: 999, canary: 0}, TAGS) == (arn, False)  # found, not duplicated
    rule = moto.client("elbv2").describe_rules(RuleArns=[arn])["Rules"][0]
    # Weight 1 on the primary, never all 0 (AWS does not document that it accepts that).
    assert rule["Priority"] == "50000" and moto.forward_weights(arn) == {primary: 1, canary: 0}
    # It matches no real request: the uid header alone is not enough, the source must be 255.255.255.255.
    sources = [c["SourceIpConfig"]["Values"] for c in rule["Conditions"] if c["Field"] == "source-ip"]
    assert sources == [["255.255.255.255/32"]]
    assert set(moto.target_states(primary).values()) == {"initial"}
    realism_clock.now += 10
    assert set(moto.target_states(primary).values()) == {"healthy"}
    listener = spec.load_balancer.listener_arn
    assert traffic.detach(listener, uid="uid-1") and not traffic.detach(listener, uid="uid-1")


def test_deleting_a_canary_whose_spec_no_longer_parses_removes_its_warm_up_rule(moto):
    """Deletion of a Canary in Initializing (no route yet) with a spec that no longer parses: the warm-up
    rule goes by the ARN status recorded, so its target groups can be deleted (no ResourceInUse loop)."""
    from awsctl.routing import Ledger

    listener = moto.listener("warm-gone")
    primary = moto.target_group("wg-p")
    spec = CanarySpec.parse(
        {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": listener}}
    )
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)
    status: dict = {}
    ledger = Ledger(lambda: status, status.update, lambda *_: None, owner=TAGS, uid="uid-9")
    traffic.warm_up(spec, ledger, {primary: 999}, None)
    assert status["warmup"] and status["warmupRule"]
    elbv2 = moto.client("elbv2")
    assert [r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]] == [
        status["warmupRule"]
    ]
    with pytest.raises(ClientError, match="ResourceInUse"):
        elbv2.delete_target_group(TargetGroupArn=primary)  # what the finalizer retried forever
    assert traffic.release(None, ledger, [w.Backend(primary)], [], lambda arns: {}) is None
    assert [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]] == []
    assert status["warmupRule"] is None
    elbv2.delete_target_group(TargetGroupArn=primary)  # in use by no rule now


def test_a_group_recreated_under_its_name_is_looked_up_afresh(moto):
    from awsctl.aws.targets import TargetGroupNotFound, TargetGroups

    groups = TargetGroups(Clients())
    old = moto.target_group("renamed")
    assert groups.describe("renamed").arn == old
    moto.client("elbv2").delete_target_group(TargetGroupArn=old)
    new = moto.target_group("renamed")
    with pytest.raises(TargetGroupNotFound):
        groups.health(old)
    assert groups.describe("renamed").arn == new  # the NotFound evicted the name too


@pytest.mark.parametrize("where", ["listener", "rule", "load balancer"])
def test_a_listener_or_rule_the_load_balancer_controller_manages_is_refused(moto, where):
    """The LBC reconciles its Ingress listeners: it would undo awsctl's weights or delete its rule. On a load
    balancer it manages, it deletes every listener it does not model: a listener added beside an Ingress is
    refused too, by the load balancer's tags (the listener's own are clean)."""
    from awsctl.controllers.errors import NotReady

    name = where.replace(" ", "-")
    listener = moto.listener(f"lbc-{name}")
    users = moto.target_group(f"lbc-{name}-u")
    elbv2 = moto.client("elbv2")
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=3,
        Conditions=rule_conditions(("web.example.com",), ()),
        Actions=[wire.forward_action({users: 1})],
    )["Rules"][0]["RuleArn"]
    lbc = [{"Key": "elbv2.k8s.aws/cluster", "Value": "prod"}, {"Key": "ingress.k8s.aws/stack", "Value": "shop/web"}]
    tagged = {"listener": listener, "rule": rule, "load balancer": naming.load_balancer_arn(listener)}[where]
    assert naming.load_balancer_arn(listener) in {
        lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]
    }
    elbv2.add_tags(ResourceArns=[tagged], Tags=lbc)
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 3}},
        }
    )
    traffic, recorded = Traffic(Listeners(Clients()), sleep=lambda _: None), []
    with pytest.raises(NotReady) as err:
        traffic.take_route(spec, TAGS, {}, recorded.append)
    field = "spec.loadBalancer.rule.priority" if where == "rule" else "spec.loadBalancer.listenerARN"
    assert err.value.reason == "ManagedByLoadBalancerController" and err.value.field == field
    assert f"the {where} " in err.value.message and recorded == []
    assert "elbv2.k8s.aws/cluster=prod" in err.value.message and "AWS Load Balancer Controller" in err.value.message
    assert recorded == [] and moto.forward_weights(rule) == {users: 1}
    if where == "listener":  # nor does a warm-up rule go onto such a listener
        with pytest.raises(NotReady):
            traffic.attach(spec, "uid-1", {users: 0}, TAGS)
        assert len(elbv2.describe_rules(ListenerArn=listener)["Rules"]) == 2  # the default and the LBC's


def test_a_spec_change_while_the_rule_was_deleted_outside_awsctl_retakes_the_route(moto):
    """The hosts changed and the rule is gone: the condition sync meets RuleNotFound, which means
    "re-take the route" (an event), not an error that loops the tick forever."""
    from awsctl.routing import Ledger

    listener = moto.listener("cond-gone")
    primary, canary = moto.target_group("cg-p"), moto.target_group("cg-c")
    listeners = Listeners(Clients())
    arn = listeners.create_rule(
        listener, 10, rule_conditions(("old.example.com",), ()), [wire.forward_action({primary: 999, canary: 0})], TAGS
    )
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 10, "hosts": ["new.example.com"]}},
        }
    )
    status: dict = {"listenerRule": {"arn": arn, "created": True, "listener": listener, "priority": 10}}
    said = []
    ledger = Ledger(lambda: status, status.update, lambda *args: said.append(args))
    moto.client("elbv2").delete_rule(RuleArn=arn)
    traffic = Traffic(listeners, sleep=lambda _: None)
    held = traffic.hold(spec, ledger, [w.Backend(primary)], [w.Backend(canary)], 0, spec_changed=True)
    assert held.shown is None and status["listenerRule"] is None
    assert [reason for _, reason, _ in said] == ["RouteDrifted"]


def test_the_warm_up_rule_never_takes_the_specs_priority_and_is_never_adopted_as_the_route(moto):
    from awsctl.routing.alb import WARMUP_ROLE, warmup_conditions

    listener = moto.listener("warm-prio")
    primary, canary = moto.target_group("wp-p"), moto.target_group("wp-c")
    elbv2 = moto.client("elbv2")
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)

    def spec_at(priority):
        return CanarySpec.parse(
            {
                "targetRef": {"name": "web"},
                "service": {"port": 80},
                "loadBalancer": {"listenerARN": listener, "rule": {"priority": priority}},
            }
        )

    # The highest free priority is the spec's own: the warm-up rule takes the next one.
    arn, _ = traffic.attach(spec_at(50000), "uid-w", {primary: 999, canary: 0}, TAGS)
    assert elbv2.describe_rules(RuleArns=[arn])["Rules"][0]["Priority"] == "49999"
    traffic.detach(listener, uid="uid-w")

    # A warm-up rule of ours already at the priority the spec now names (an older operator, or an edit).
    old = Listeners(Clients()).create_rule(
        listener,
        7,
        warmup_conditions("uid-w"),
        [wire.forward_action({primary: 1, canary: 0})],
        {**TAGS, naming.ROLE: WARMUP_ROLE},
    )
    recorded = []
    route = traffic.take_route(spec_at(7), TAGS, {primary: 999, canary: 0}, recorded.append)
    assert route.arn != old and recorded[-1]["arn"] == route.arn and recorded[-1]["created"]
    rules = {r["Priority"]: r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]}
    assert rules["7"]["RuleArn"] == route.arn and not any(
        c.get("HttpHeaderConfig") for c in rules["7"]["Conditions"]
    )  # the route's conditions, not the warm-up's header
    assert moto.forward_weights(route.arn) == {primary: 999, canary: 0}


def test_health_check_fields_removed_from_the_spec_go_back_to_aws_defaults(moto):
    owned = OwnedTargetGroups(Clients())
    arn, _ = owned.ensure(desired(moto, name="ns-web-hc-p", health_check={"path": "/ready", "intervalSeconds": 10}))
    elbv2 = moto.client("elbv2")
    group = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    assert (group["HealthCheckPath"], group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"]) == (
        "/ready",
        10,
        5,
    )
    _, changed = owned.ensure(desired(moto, name="ns-web-hc-p", health_check={}))
    group = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    assert changed and group["HealthCheckPath"] == "/" and group["HealthCheckIntervalSeconds"] == 30
    assert group["Matcher"] == {"HttpCode": "200"} and group["HealthyThresholdCount"] == 5
    _, changed = owned.ensure(desired(moto, name="ns-web-hc-p", health_check={}))
    assert not changed  # at the defaults: nothing to write
    # A short interval keeps the default timeout below it, as AWS requires.
    owned.ensure(desired(moto, name="ns-web-hc-p", health_check={"intervalSeconds": 5}))
    group = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    assert (group["HealthCheckIntervalSeconds"], group["HealthCheckTimeoutSeconds"]) == (5, 4)


def test_a_groups_settings_are_read_again_after_awsctl_changes_it(moto):
    """The canary's groups are updated in place by awsctl (CanaryGroups forgets the group then): the
    health-check interval that paces health reads is read again, not cached forever."""
    from awsctl.aws.targets import TargetGroups

    arn = moto.target_group("cache-hc")
    groups = TargetGroups(Clients())
    assert groups.describe(arn).health_check_interval == 5  # as the harness creates it
    moto.client("elbv2").modify_target_group(TargetGroupArn=arn, HealthCheckIntervalSeconds=10)
    assert groups.describe(arn).health_check_interval == 5  # cached: a steady state costs no call
    groups.forget(arn)  # what CanaryGroups does after its own change
    assert groups.describe(arn).health_check_interval == 10


def test_deletion_gives_a_route_back_to_the_users_groups_only_once_they_can_serve(moto):
    """A taken-over default action that forwarded to your group goes back to it only after the warm-up rule
    has put it in use (its targets were `unused`: never health-checked) and the caller's judge said yes."""
    import json

    from awsctl.routing import Ledger

    elbv2 = moto.client("elbv2")
    listener = moto.listener("give-back")
    yours, primary = moto.target_group("gb-yours"), moto.target_group("gb-p")
    elbv2.register_targets(TargetGroupArn=yours, Targets=[{"Id": "10.0.1.1", "Port": 80}])
    previous = [{"Type": "forward", "TargetGroupArn": yours, "Order": 1}]
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": primary}])
    assert set(moto.target_states(yours).values()) == {"unused"}
    spec = CanarySpec.parse(
        {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": listener}}
    )
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)
    ab = elbv2.create_rule(
        ListenerArn=listener,
        Priority=5,
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["1"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": primary}],
    )["Rules"][0]["RuleArn"]
    status: dict = {
        "listenerRule": {"arn": listener, "created": False, "previousActions": json.dumps(previous)},
        "abRules": [ab],
    }
    ledger = Ledger(lambda: status, status.update, lambda *_: None, uid="uid-7")
    asked: list[list[str]] = []
    verdicts = iter(["waiting for your group", None])

    def restorable(groups):
        asked.append(groups)
        return next(verdicts)

    def release():
        return traffic.release(spec, ledger, [w.Backend(primary)], [], lambda arns: {}, restorable)

    assert release() == "waiting for your group"
    assert asked == [[yours]]
    assert status["abRules"] == []  # gone before the wait: never routing to the canary meanwhile
    assert moto.forward_weights(listener) == {primary: 1}  # the route is still ours
    rules = [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]]
    assert [r["RuleArn"] for r in rules] == [status["warmupRule"]]
    assert moto.forward_weights(status["warmupRule"]) == {yours: 1}
    assert set(moto.target_states(yours).values()) == {"initial"}  # in use: AWS health-checks it
    assert release() is None
    assert moto.forward_weights(listener) == {yours: 1}
    assert [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]] == []
    assert status["listenerRule"] is None and status["warmupRule"] is None


def _untagged_rule(moto, name: str, conditions: list) -> tuple[str, str, str]:
    """An app's own rule (not awsctl's) at priority 3: (listener, rule ARN, its group)."""
    listener, users = moto.listener(name), moto.target_group(f"{name}-u")
    rule = moto.client("elbv2").create_rule(
        ListenerArn=listener, Priority=3, Conditions=conditions, Actions=[wire.forward_action({users: 1})]
    )["Rules"][0]["RuleArn"]
    return listener, rule, users


def _rule_spec(listener: str, **rule) -> CanarySpec:
    return CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 3, **rule}},
        }
    )


SHOP = {"Field": "host-header", "HostHeaderConfig": {"Values": ["shop.example.com"]}}
OFFICE = {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}


def test_a_rule_is_taken_over_only_when_its_host_and_path_are_the_specs_or_its_arn_is_named(moto):
    """A priority typo took over another team's route, with a log line. Now: taken over when the rule's
    host and path conditions are the spec's hosts and paths (host without case; source-ip and the like do
    not block, and stay), or when spec.loadBalancer.rule.arn names it; otherwise refused, naming both."""
    from awsctl.controllers.errors import NotReady

    listener, rule, users = _untagged_rule(moto, "typo", [SHOP, OFFICE])
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)
    table = [
        # (spec's rule fields, refused with this in the message, or None: taken over)
        ({}, "matches host shop.example.com, but spec.loadBalancer.rule says every host and path"),
        ({"hosts": ["web.example.com"]}, "says host web.example.com"),
        ({"hosts": ["shop.example.com"], "paths": ["/api/*"]}, "says host shop.example.com, path /api/*"),
        ({"arn": rule.rsplit("/", 1)[0] + "/0000000000000000"}, "rule 0000000000000000 is not at priority 3"),
        ({"hosts": ["Shop.Example.com"]}, None),
        ({"arn": rule}, None),
    ]
    for fields, refused in table:
        recorded: list = []
        if refused is None:
            route = traffic.take_route(_rule_spec(listener, **fields), TAGS, {}, recorded.append)
            assert route.arn == rule and recorded[0]["created"] is False, fields
            continue
        with pytest.raises(NotReady) as err:
            traffic.take_route(_rule_spec(listener, **fields), TAGS, {}, recorded.append)
        assert err.value.reason == "RouteMismatch" and refused in err.value.message, (fields, err.value.message)
        assert recorded == [] and moto.forward_weights(rule) == {users: 1}  # nothing recorded, nothing changed
        if "arn" not in fields:
            assert err.value.field == "spec.loadBalancer.rule.priority" and f"rule.arn: {rule}" in err.value.message
    rules = moto.client("elbv2").describe_rules(RuleArns=[rule])["Rules"][0]
    assert {c["Field"] for c in rules["Conditions"]} == {"host-header", "source-ip"}  # as found
    with pytest.raises(NotReady, match="no rule is"):  # the named rule is gone: never created in its place
        traffic.take_route(_rule_spec(listener, arn=rule, priority=4), TAGS, {}, [].append)


def test_ab_rules_in_front_of_a_taken_over_rule_carry_every_condition_of_the_route(moto):
    """A/B rules were built from the spec's hosts and paths: in front of a rule for host shop.example.com
    from 10.0.0.0/8, `x-canary: always` reached the canary on every host of the listener, from anywhere."""
    from awsctl.controllers.errors import NotReady
    from awsctl.routing import Ledger

    method = {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}}
    listener, rule, users = _untagged_rule(moto, "abroute", [SHOP, OFFICE, method])
    canary = moto.target_group("abroute-c")
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)

    def spec(match: dict) -> CanarySpec:
        return CanarySpec.parse(
            {
                "targetRef": {"name": "web"},
                "service": {"port": 80},
                "loadBalancer": {"listenerARN": listener, "rule": {"priority": 3, "hosts": ["shop.example.com"]}},
                "analysis": {"iterations": 2, "match": [match]},
            }
        )

    header = {"headers": {"x-canary": {"exact": "always"}}}
    status: dict = {}
    ledger = Ledger(lambda: status, status.update, lambda *_: None, owner=TAGS)
    traffic.take_route(spec(header), TAGS, {}, lambda record: status.update({"listenerRule": record}))
    assert traffic.sync_ab(spec(header), ledger, [w.Backend(canary)], True)
    (ab,) = status["abRules"]
    conds = moto.client("elbv2").describe_rules(RuleArns=[ab])["Rules"][0]["Conditions"]
    values = {c["Field"]: wire.field_values([c], c["Field"]) for c in conds}
    assert values == {
        "host-header": ("shop.example.com",),
        "source-ip": ("10.0.0.0/8",),
        "http-request-method": ("GET",),
        "http-header": ("always",),
    }
    assert traffic.sync_ab(spec(header), ledger, [w.Backend(canary)], False)  # removed

    # The match's own source IPs: only what lies within the route's (one source-ip condition per rule).
    assert traffic.sync_ab(spec({"sourceIPs": ["10.1.0.0/16", "192.168.0.0/16"]}), ledger, [w.Backend(canary)], True)
    (ab,) = status["abRules"]
    conds = moto.client("elbv2").describe_rules(RuleArns=[ab])["Rules"][0]["Conditions"]
    assert [wire.field_values([c], "source-ip") for c in conds if c["Field"] == "source-ip"] == [("10.1.0.0/16",)]
    traffic.sync_ab(spec(header), ledger, [w.Backend(canary)], False)
    with pytest.raises(NotReady) as err:  # outside the route altogether: no request could match
        traffic.sync_ab(spec({"sourceIPs": ["192.168.0.0/16"]}), ledger, [w.Backend(canary)], True)
    assert err.value.field == "spec.analysis.match" and "no request could match" in err.value.message
    assert not status.get("abRules")


def test_status_is_not_an_authority_deletion_writes_only_to_what_aws_tags_as_this_canarys(moto):
    """Deletion replayed the ARNs and previousActions in status with ModifyRule, ModifyListener and
    DeleteRule: whoever could edit status could point awsctl at any rule its role reaches. Now each rule or
    route status names is written to only when AWS's own tags say it is this Canary's; the others are left
    as they are, dropped from status, with a StatusNotTrusted warning."""
    import json

    from awsctl.routing import Ledger

    elbv2 = moto.client("elbv2")
    listener = moto.listener("forged")
    theirs = moto.target_group("forged-theirs")
    mine_p, mine_c = moto.target_group("forged-p"), moto.target_group("forged-c")
    elbv2.add_tags(ResourceArns=[mine_p, mine_c], Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()])
    forward = [wire.forward_action({theirs: 1})]
    their_rules = [
        elbv2.create_rule(
            ListenerArn=listener,
            Priority=p,
            Conditions=rule_conditions((f"{p}.example.com",), ()),
            Actions=forward,
            Tags=[{"Key": naming.OWNER, "Value": "Canary/pay/api"}],
        )["Rules"][0]["RuleArn"]
        for p in (1, 2, 3)
    ]
    traffic = Traffic(Listeners(Clients()), sleep=lambda _: None)
    table = [
        # status.listenerRule as forged: a rule "awsctl created", and a route "it took over"
        {"arn": their_rules[0], "created": True},
        {"arn": their_rules[0], "created": False, "previousActions": json.dumps([wire.forward_action({mine_p: 1})])},
        {"arn": listener, "created": False, "previousActions": json.dumps([wire.forward_action({mine_p: 1})])},
    ]
    for forged in table:
        said: list = []
        status: dict = {
            "listenerRule": forged,
            "abRules": [their_rules[1]],
            "warmupRule": their_rules[2],
            "targetGroups": {"primary": [mine_p], "canary": [mine_c]},
        }
        ledger = Ledger(lambda: status, status.update, lambda *args: said.append(args), owner=TAGS, uid="uid-9")
        primary, canary = [w.Backend(mine_p)], [w.Backend(mine_c)]
        assert traffic.set_weight(None, ledger, primary, canary, 0, {mine_p: 1, mine_c: 1}) is None
        status["listenerRule"], status["abRules"], status["warmupRule"] = forged, [their_rules[1]], their_rules[2]
        assert traffic.release(None, ledger, primary, canary, lambda arns: {a: 1 for a in arns}) is None
        assert {r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if not r["IsDefault"]} == set(
            their_rules
        ), forged  # none deleted
        for arn in their_rules:
            assert moto.forward_weights(arn) == {theirs: 1}  # none rewritten
        default = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
        assert mine_p not in json.dumps(default)  # the listener's default action never "restored" to ours
        assert status["listenerRule"] is None and status["abRules"] == [] and status["warmupRule"] is None
        assert {reason for _, reason, _ in said} == {"StatusNotTrusted"}, said

    # The Canary's own created rule is vouched for by its tags, and deleted as before.
    # An A/B rule already deleted (by hand, or by an earlier attempt) is no stranger: just forgotten.
    own = Listeners(Clients()).create_rule(listener, 9, rule_conditions(("own.example.com",), ()), forward, dict(TAGS))
    gone = Listeners(Clients()).create_rule(listener, 8, rule_conditions(("ab.example.com",), ()), forward, dict(TAGS))
    elbv2.delete_rule(RuleArn=gone)
    status = {"listenerRule": {"arn": own, "created": True}, "abRules": [gone]}
    said = []
    ledger = Ledger(lambda: status, status.update, lambda *args: said.append(args), owner=TAGS, uid="uid-9")
    assert traffic.release(None, ledger, [], [], lambda arns: {}) is None
    assert own not in {r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]}
    assert said == [] and status["abRules"] == [] and status["listenerRule"] is None


def test_status_is_not_an_authority_while_a_rollout_runs_either(moto):
    """Status edited mid-rollout to name another team's rule on the same listener: the next tick's drift
    repair and step wrote this Canary's forward onto it. Now a route status names is written to only
    once AWS shows it as this Canary's (its tags, or a forward to only this Canary's groups)."""
    import json

    from awsctl.routing import Ledger

    elbv2 = moto.client("elbv2")
    listener = moto.listener("forged-run")
    theirs = moto.target_group("fr-theirs")
    mine_p, mine_c = moto.target_group("fr-p"), moto.target_group("fr-c")
    elbv2.add_tags(ResourceArns=[mine_p, mine_c], Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()])
    listeners = Listeners(Clients())
    own = listeners.create_rule(
        listener, 10, rule_conditions(("web.example.com",), ()), [wire.forward_action({mine_p: 999, mine_c: 0})], TAGS
    )
    their = elbv2.create_rule(
        ListenerArn=listener,
        Priority=20,
        Conditions=rule_conditions(("pay.example.com",), ()),
        Actions=[wire.forward_action({theirs: 1})],
    )["Rules"][0]["RuleArn"]
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 10, "hosts": ["web.example.com"]}},
        }
    )
    traffic = Traffic(listeners, sleep=lambda _: None)
    primary, canary = [w.Backend(mine_p)], [w.Backend(mine_c)]
    serving = {mine_p: 2, mine_c: 2}
    for forged in ({"arn": their, "created": True}, {"arn": their, "created": False, "previousActions": "[]"}):
        said: list = []
        status: dict = {"listenerRule": {**forged, "listener": listener, "priority": 10}}
        ledger = Ledger(lambda: status, status.update, lambda *args: said.append(args), owner=TAGS)
        held = traffic.hold(spec, ledger, primary, canary, 200, spec_changed=False)
        assert held.shown is None and not held.write
        result = traffic.set_weight(spec, ledger, primary, canary, 200, serving, lambda _: True, True)
        assert result is not None and not result.verified
        assert moto.forward_weights(their) == {theirs: 1}, forged  # never rewritten
        assert {reason for _, reason, _ in said} == {"StatusNotTrusted"}, said

    # The Canary's own rule: vouched for by its tags, and stepped as before.
    status = {"listenerRule": {"arn": own, "created": True, "listener": listener, "priority": 10}}
    ledger = Ledger(lambda: status, status.update, lambda *args: None, owner=TAGS)
    result = traffic.set_weight(spec, ledger, primary, canary, 200, serving, lambda _: True, False)
    assert result is not None and result.verified and moto.forward_weights(own) == {mine_p: 800, mine_c: 200}

    # Stopped between the take-over's write-ahead and its write: the rule still forwards to your groups.
    # The spec would take it over as it is (its priority, its host), so it is this Canary's route.
    users = elbv2.create_rule(
        ListenerArn=listener,
        Priority=30,
        Conditions=rule_conditions(("shop.example.com",), ()),
        Actions=[wire.forward_action({theirs: 1})],
    )["Rules"][0]["RuleArn"]
    shop = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, "rule": {"priority": 30, "hosts": ["shop.example.com"]}},
        }
    )
    previous = json.dumps(elbv2.describe_rules(RuleArns=[users])["Rules"][0]["Actions"])
    status = {"listenerRule": {"arn": users, "created": False, "previousActions": previous, "listener": listener}}
    status["listenerRule"]["priority"] = 30
    said = []
    ledger = Ledger(lambda: status, status.update, lambda *args: said.append(args), owner=TAGS)
    result = traffic.set_weight(shop, ledger, primary, canary, 0, serving, lambda _: True, False)
    assert result is not None and result.verified and said == []
    assert set(moto.forward_weights(users)) == {mine_p, mine_c}
