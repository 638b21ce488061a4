"""The ELBv2 realism layer itself: what the rest of the aws and e2e tiers rely on moto to do like AWS."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.aws


@pytest.fixture
def clock(realism_clock):
    return realism_clock


def operator_client(moto):
    """A client like the operator's: counted against the budget, and no retries to hide a refusal."""
    return boto3.client(
        "elbv2",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def states(moto, arn):
    return sorted(moto.target_states(arn).values())


def test_targets_are_unused_until_a_rule_forwards_then_initial_then_healthy(moto, clock):
    listener = moto.listener("realism")
    arn = moto.target_group("realism-a")
    elbv2 = moto.client("elbv2")
    elbv2.register_targets(
        TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1", "Port": 8080}, {"Id": "10.0.0.1", "Port": 9090}]
    )
    assert states(moto, arn) == ["unused", "unused"]  # keyed by id and port: two targets
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert {h["TargetHealth"]["Reason"] for h in health} == {"Target.NotInUse"}
    # A forward whose weights are all 0 is assumed refused (AWS's documentation does not say it is
    # accepted), so awsctl never relies on one; a group at weight 0 beside one above 0 is in use.
    path = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/x"]}}]
    with pytest.raises(ClientError) as err:
        elbv2.create_rule(
            ListenerArn=listener,
            Priority=5,
            Conditions=path,
            Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": arn, "Weight": 0}]}}],
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
    other = moto.target_group("realism-b")
    pairs = [{"TargetGroupArn": arn, "Weight": 0}, {"TargetGroupArn": other, "Weight": 1}]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=5,
        Conditions=path,
        Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": pairs}}],
    )
    rule_arn = rule["Rules"][0]["RuleArn"]
    reasons = {
        h["TargetHealth"]["Reason"]
        for h in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    }
    assert states(moto, arn) == ["initial", "initial"] and reasons == {"Elb.RegistrationInProgress"}
    clock.now += 4.9
    assert states(moto, arn) == ["initial", "initial"]  # before its first health check (interval 5 s)
    clock.now += 0.1
    # AWS: "After your target is registered, it must pass one health check to be considered healthy"
    assert states(moto, arn) == ["healthy", "healthy"]
    moto.unhealthy.add("10.0.0.1:9090")
    assert sorted(moto.target_states(arn).items()) == [
        (("10.0.0.1", 8080), "healthy"),
        (("10.0.0.1", 9090), "unhealthy"),
    ]
    # Deregistered: draining for the group's delay (5 s here), still listed, then gone.
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1", "Port": 8080}])
    assert moto.target_states(arn)[("10.0.0.1", 8080)] == "draining"
    # Registered again while draining: it starts over, as a new registration.
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1", "Port": 8080}])
    assert moto.target_states(arn)[("10.0.0.1", 8080)] == "initial"
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1", "Port": 8080}])
    clock.now += 5
    assert ("10.0.0.1", 8080) not in moto.target_states(arn)
    # No rule forwards any more: unused again, and the next use starts the health checks over.
    elbv2.delete_rule(RuleArn=rule_arn)
    assert states(moto, arn) == ["unused"]


def test_the_documented_rate_limits_throttle_past_the_bucket(moto, clock):
    elbv2 = operator_client(moto)
    listener = moto.listener("budget")
    for _ in range(40):  # the Describe* bucket holds 40
        elbv2.describe_rules(ListenerArn=listener)
    with pytest.raises(ClientError) as err:
        elbv2.describe_rules(ListenerArn=listener)
    assert err.value.response["Error"]["Code"] == "Throttling"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    clock.now += 0.1  # refills 10 per second
    elbv2.describe_rules(ListenerArn=listener)
    # The buckets are separate: registration has its own 20.
    arn = moto.target_group("budget-a")
    for i in range(20):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": f"10.0.1.{i}", "Port": 80}])
    with pytest.raises(ClientError) as err:
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.2.1", "Port": 80}])
    assert err.value.response["Error"]["Code"] == "Throttling"
    assert moto.realism.stats.throttled == 2


def test_injected_throttling_hits_only_the_named_calls(moto):
    elbv2 = operator_client(moto)
    listener = moto.listener("inject")
    moto.throttle(1, "ModifyListener")
    elbv2.describe_listeners(ListenerArns=[listener])
    with pytest.raises(ClientError) as err:
        elbv2.modify_listener(
            ListenerArn=listener,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )
    assert err.value.response["Error"]["Code"] == "Throttling"


def test_validation_moto_skips(moto):
    elbv2 = moto.client("elbv2")
    listener = moto.listener("strict")
    groups = [moto.target_group(f"strict-{i}") for i in range(6)]

    def refused(code, **kwargs):
        with pytest.raises(ClientError) as err:
            elbv2.create_rule(ListenerArn=listener, **kwargs)
        assert err.value.response["Error"]["Code"] == code, err.value.response
        return err.value.response["Error"]["Message"]

    path = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a"]}}]

    def forward(weights):
        pairs = [{"TargetGroupArn": g, "Weight": w} for g, w in zip(groups, weights)]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": pairs}}]

    assert "0-999" in refused("ValidationError", Priority=1, Conditions=path, Actions=forward([1000]))
    assert "at most 5" in refused("ValidationError", Priority=1, Conditions=path, Actions=forward([1] * 6))
    assert "'5' condition values" in refused(
        "ValidationError",
        Priority=1,
        Actions=forward([1]),
        Conditions=[
            {"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/{i}" for i in range(3)]}},
            {"Field": "host-header", "HostHeaderConfig": {"Values": [f"h{i}.example.com" for i in range(3)]}},
        ],
    )
    # Four hosts: within the rule's five, but over the three one condition may hold.
    assert "'3' values" in refused(
        "ValidationError",
        Priority=1,
        Actions=forward([1]),
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [f"h{i}.example.com" for i in range(4)]}}],
    )
    elbv2.create_rule(ListenerArn=listener, Priority=1, Conditions=path, Actions=forward([1]))
    refused("PriorityInUse", Priority=1, Conditions=path, Actions=forward([1]))
    for priority in range(2, 101):
        elbv2.create_rule(ListenerArn=listener, Priority=priority, Conditions=path, Actions=forward([1]))
    refused("TooManyRules", Priority=101, Conditions=path, Actions=forward([1]))
    # An IPv6 target does not go into an IPv4 group, and it fails the whole call.
    with pytest.raises(ClientError) as err:
        elbv2.register_targets(
            TargetGroupArn=groups[0], Targets=[{"Id": "10.0.0.9", "Port": 80}, {"Id": "fd00::9", "Port": 80}]
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert moto.targets(groups[0]) == set()


def test_an_oidc_client_secret_is_kept_never_shown_and_must_be_resent_or_kept(moto):
    """AWS: Describe* never returns ClientSecret, and a ModifyRule or ModifyListener whose authenticate-oidc
    has neither ClientSecret nor UseExistingClientSecret: true is a ValidationError."""
    elbv2 = moto.client("elbv2")
    listener = moto.listener("oidc")
    group = moto.target_group("oidc-g")
    config = {
        "Issuer": "https://idp.example.com",
        "AuthorizationEndpoint": "https://idp.example.com/auth",
        "TokenEndpoint": "https://idp.example.com/token",
        "UserInfoEndpoint": "https://idp.example.com/user",
        "ClientId": "web",
    }
    actions = [
        {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {**config, "ClientSecret": "s3cret"}},
        {"Type": "forward", "Order": 2, "TargetGroupArn": group},
    ]
    path = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a"]}}]
    rule = elbv2.create_rule(ListenerArn=listener, Priority=1, Conditions=path, Actions=actions)["Rules"][0]
    shown = elbv2.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]["Actions"]
    assert "ClientSecret" not in rule["Actions"][0]["AuthenticateOidcConfig"]
    assert "ClientSecret" not in shown[0]["AuthenticateOidcConfig"]
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=actions)
    default = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
    assert "ClientSecret" not in default[0]["AuthenticateOidcConfig"]

    for modify in (
        lambda acts: elbv2.modify_rule(RuleArn=rule["RuleArn"], Actions=acts),
        lambda acts: elbv2.modify_listener(ListenerArn=listener, DefaultActions=acts),
    ):
        with pytest.raises(ClientError) as err:  # what Describe showed, sent back as it is
            modify(shown)
        assert err.value.response["Error"]["Code"] == "ValidationError"
        assert "UseExistingClientSecret" in err.value.response["Error"]["Message"]
        kept = [{**shown[0], "AuthenticateOidcConfig": {**config, "UseExistingClientSecret": True}}, shown[1]]
        modify(kept)


def test_a_target_in_a_zone_the_load_balancer_does_not_enable_stays_unused(moto, clock):
    """AWS documents it in the TargetHealth reasons: a target whose zone is not enabled on the load
    balancer is never checked (Target.NotInUse), even in a group that is in use."""
    import ipaddress

    elbv2, ec2 = moto.client("elbv2"), moto.client("ec2")
    vpc = moto.default_vpc()["VpcId"]
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"],
        key=lambda s: s["AvailabilityZone"],
    )[:3]
    lb = elbv2.create_load_balancer(Name="two-zones", Subnets=[s["SubnetId"] for s in subnets[:2]])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    arn = moto.target_group("zones-g")
    ips = [str(next(ipaddress.ip_network(s["CidrBlock"]).hosts()) + 10) for s in subnets]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 80} for ip in ips])
    elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}]
    )
    health = {
        d["Target"]["Id"]: d["TargetHealth"]
        for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    }
    assert health[ips[0]]["State"] == health[ips[1]]["State"] == "initial"
    third = health[ips[2]]
    assert third["State"] == "unused" and third["Reason"] == "Target.NotInUse"
    assert "Availability Zone that is not enabled" in third["Description"]
    # Outside the VPC (AvailabilityZone "all"), a target is routed through every enabled zone.
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.99.0.1", "Port": 80, "AvailabilityZone": "all"}])
    assert moto.target_states(arn)[("10.99.0.1", 80)] == "initial"


def test_a_target_group_joins_one_load_balancer_only(moto):
    """AWS refuses to forward to a target group that another load balancer uses (moto accepts it): a Canary
    moved to a listener of another load balancer needs groups of its own."""
    elbv2 = moto.client("elbv2")
    first, second = moto.listener("realism-one"), moto.listener("realism-two")
    group = moto.target_group("realism-shared", listener=first, priority=3)
    path = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/x/*"]}}]
    forward = [{"Type": "forward", "TargetGroupArn": group}]
    with pytest.raises(ClientError) as err:
        elbv2.create_rule(ListenerArn=second, Priority=3, Conditions=path, Actions=forward)
    assert err.value.response["Error"]["Code"] == "TargetGroupAssociationLimit"
    with pytest.raises(ClientError) as err:
        elbv2.modify_listener(ListenerArn=second, DefaultActions=forward)
    assert err.value.response["Error"]["Code"] == "TargetGroupAssociationLimit"
    # Another rule of the same load balancer may forward to it, and once no rule of the first uses it, the
    # second load balancer may.
    rule = elbv2.create_rule(ListenerArn=first, Priority=4, Conditions=path, Actions=forward)["Rules"][0]["RuleArn"]
    for arn in [r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=first)["Rules"] if not r["IsDefault"]]:
        elbv2.delete_rule(RuleArn=arn)
    assert rule
    elbv2.create_rule(ListenerArn=second, Priority=3, Conditions=path, Actions=forward)


def test_a_network_load_balancer_is_not_an_alb(moto):
    """What moto (5.2) stores for an NLB, and what the layer makes of it: `net/` ARNs, a weighted default
    action with weights 0-999 read back as written, groups of a protocol the listener carries, no stickiness
    on TLS, and rules that match only the source address type, on a dual-stack NLB."""
    elbv2, ec2 = moto.client("elbv2"), moto.client("ec2")
    vpc = moto.default_vpc()["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    nlb = elbv2.create_load_balancer(Name="realism-nlb", Subnets=subnets[:2], Type="network", Scheme="internal")
    lb = nlb["LoadBalancers"][0]["LoadBalancerArn"]
    assert ":loadbalancer/net/realism-nlb/" in lb

    def group(name, protocol):
        made = elbv2.create_target_group(Name=name, Protocol=protocol, Port=80, VpcId=vpc, TargetType="ip")
        return made["TargetGroups"][0]["TargetGroupArn"]

    primary, canary, web, both = (
        group("nlb-p", "TCP"),
        group("nlb-c", "TCP"),
        group("nlb-http", "HTTP"),
        group("nlb-both", "TCP_UDP"),
    )

    def forward(weights, sticky=False):
        return [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [{"TargetGroupArn": arn, "Weight": n} for arn, n in weights.items()],
                    "TargetGroupStickinessConfig": {"Enabled": sticky, **({"DurationSeconds": 60} if sticky else {})},
                },
            }
        ]

    tcp = elbv2.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=80, DefaultActions=forward({primary: 999}))
    listener = tcp["Listeners"][0]["ListenerArn"]
    assert ":listener/net/realism-nlb/" in listener
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward({primary: 990, canary: 10, both: 0}))
    assert moto.forward_weights(listener) == {primary: 990, canary: 10, both: 0}

    def refused(call, **kwargs) -> str:
        with pytest.raises(ClientError) as err:
            call(**kwargs)
        return err.value.response["Error"]["Code"]

    assert refused(elbv2.modify_listener, ListenerArn=listener, DefaultActions=forward({primary: 1000})) == (
        "ValidationError"
    )
    assert refused(elbv2.modify_listener, ListenerArn=listener, DefaultActions=forward({web: 1})) == (
        "IncompatibleProtocols"
    )
    udp = elbv2.create_listener(LoadBalancerArn=lb, Protocol="UDP", Port=53, DefaultActions=forward({both: 1}))
    assert refused(
        elbv2.modify_listener, ListenerArn=udp["Listeners"][0]["ListenerArn"], DefaultActions=forward({primary: 1})
    ) == ("IncompatibleProtocols")
    assert refused(
        elbv2.create_listener, LoadBalancerArn=lb, Protocol="TCP_UDP", Port=54, DefaultActions=forward({primary: 1})
    ) == ("IncompatibleProtocols")
    # TLS: TCP groups are carried; stickiness is not.
    cert = moto.client("acm").request_certificate(DomainName="nlb.example.com")["CertificateArn"]
    tls = elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="TLS",
        Port=443,
        Certificates=[{"CertificateArn": cert}],
        DefaultActions=forward({primary: 999}),
    )["Listeners"][0]["ListenerArn"]
    assert refused(elbv2.modify_listener, ListenerArn=tls, DefaultActions=forward({primary: 999}, sticky=True)) == (
        "ValidationError"
    )
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward({primary: 999}, sticky=True))  # TCP: kept
    # Rules: the source address type only, and only on a dual-stack NLB.
    path = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/x"]}}]
    source = [{"Field": "source-ip", "SourceIpConfig": {"Values": ["0.0.0.0/0"]}}]
    assert refused(
        elbv2.create_rule, ListenerArn=listener, Priority=1, Conditions=path, Actions=forward({canary: 1})
    ) == ("ValidationError")
    assert refused(
        elbv2.create_rule, ListenerArn=listener, Priority=1, Conditions=source, Actions=forward({canary: 1})
    ) == ("ValidationError")  # an IPv4-only NLB
    # An ALB is as it was: `app/` ARNs, and its HTTP listener forwards to HTTP groups.
    assert ":listener/app/" in moto.listener("realism-alb")
