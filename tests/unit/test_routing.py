"""The ALB provider's pure parts: only the forward action is ours, warm-up rules, route moves."""

from awsctl.api.canary import CanarySpec
from awsctl.routing.alb import AlbRouter, free_priority, is_warmup, warmup_conditions, with_forward

OIDC = {
    "Type": "authenticate-oidc",
    "Order": 1,
    "AuthenticateOidcConfig": {
        "Issuer": "https://idp.example.com",
        "ClientId": "awsctl",
        "AuthorizationEndpoint": "https://idp/auth",
        "TokenEndpoint": "https://idp/token",
        "UserInfoEndpoint": "https://idp/user",
    },
}
USERS = {
    "Type": "forward",
    "Order": 2,
    "TargetGroupArn": "arn:users",
    "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:users", "Weight": 1}]},
}
OURS = {
    "Type": "forward",
    "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": "arn:p", "Weight": 999}, {"TargetGroupArn": "arn:c", "Weight": 0}]
    },
}
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb/1/2"


def test_taking_over_keeps_authentication_in_front_of_the_forward():
    actions = with_forward([USERS, OIDC], OURS)
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]
    assert actions[0]["AuthenticateOidcConfig"]["UseExistingClientSecret"] is True  # AWS never shows the secret
    assert actions[0]["AuthenticateOidcConfig"]["Issuer"] == "https://idp.example.com"
    assert actions[1] == {**OURS, "Order": 2}


def test_a_fixed_response_is_replaced_and_a_missing_terminal_action_is_appended():
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
    assert with_forward([fixed], OURS) == [OURS]
    assert [a["Type"] for a in with_forward([OIDC], OURS)] == ["authenticate-oidc", "forward"]


def test_warm_up_rule_matches_no_request_and_takes_the_highest_free_priority():
    rule = {"Conditions": warmup_conditions("uid-1")}
    assert is_warmup(rule, "uid-1") and not is_warmup(rule, "uid-2")
    assert free_priority([{"Priority": "50000"}, {"Priority": "10"}, {"Priority": "default"}]) == 49999


def spec(rule=None, listener=LISTENER):
    lb = {"listenerARN": listener, **({"rule": rule} if rule else {})}
    return CanarySpec.parse(
        {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": lb, "analysis": {"stepWeight": 10}}
    )


def test_a_changed_listener_priority_or_removed_rule_moves_the_route():
    rule_arn = LISTENER.replace(":listener/", ":listener-rule/") + "/abc"
    recorded = {"listenerRule": {"arn": rule_arn, "created": True, "listener": LISTENER, "priority": 10}}
    assert not AlbRouter.moved(spec({"priority": 10}), recorded)
    assert AlbRouter.moved(spec({"priority": 11}), recorded)
    assert AlbRouter.moved(spec(None), recorded)  # rule removed: the default action now
    assert AlbRouter.moved(spec({"priority": 10}, LISTENER[:-1] + "9"), recorded)
    # A record written before routes carried their identity still knows its listener from the ARN.
    assert not AlbRouter.moved(spec({"priority": 10}), {"listenerRule": {"arn": rule_arn, "created": True}})
    assert AlbRouter.moved(spec(None), {"listenerRule": {"arn": rule_arn, "created": True}})


def test_the_router_contract_is_seven_methods_each_on_one_line_of_its_screen():
    """A provider is one file: the Protocol names at most 7 methods (Argo Rollouts' count), and the module's
    screen gives each of them its line."""
    import awsctl.routing as routing

    methods = [m for m in vars(routing.Router) if not m.startswith("_") and callable(getattr(routing.Router, m))]
    assert len(methods) <= 7, methods
    screen = routing.__doc__ or ""
    assert all(f"    {m}(" in screen for m in methods), methods
    assert all(hasattr(AlbRouter, m) for m in methods)


def test_a_vanished_route_is_refused_by_the_field_it_came_from():
    from awsctl.aws.errors import RouteGone
    from awsctl.aws.listeners import ListenerNotFound, RuleNotFound
    from awsctl.controllers.errors import route_gone

    gone = route_gone(ListenerNotFound(LISTENER))
    assert (gone.reason, gone.field) == ("ListenerNotFound", "spec.loadBalancer.listenerARN")
    assert gone.message == f"spec.loadBalancer.listenerARN: listener {LISTENER} does not exist"
    rule = route_gone(RuleNotFound("arn:rule"))
    assert (rule.reason, rule.field) == ("RouteGone", "spec.loadBalancer.rule") and "arn:rule" in rule.message
    assert route_gone(RouteGone("x")).field == "spec.loadBalancer"


def test_what_a_provider_makes_is_tagged_with_the_canarys_owner_and_its_role():
    from awsctl.planning import naming
    from awsctl.routing import Ledger, ab_active

    owner = naming.owner_tags("prod", "Canary", "shop", "web", "owner")
    ledger = Ledger(lambda: {}, lambda _: None, lambda *_: None, owner=owner, uid="u-1")
    assert ledger.tags("rule") == naming.owner_tags("prod", "Canary", "shop", "web", "rule")
    assert Ledger(lambda: {}, lambda _: None, lambda *_: None).tags("rule") == {}  # a route tested alone
    assert ab_active({"abRules": ["arn:ab"]}) and not ab_active({"abRules": []}) and not ab_active({})
