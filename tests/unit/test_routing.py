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
