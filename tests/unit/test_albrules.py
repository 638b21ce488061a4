"""How the dev data plane routes a request: ALB's documented matching, as tables."""

from __future__ import annotations

import random

import pytest

from awsctl.dev import albrules
from awsctl.dev.albrules import Forward, Request, Rule


def req(**kw) -> Request:
    base = {"method": "GET", "host": "shop.example.com", "path": "/cart/items"}
    base.update(kw)
    return Request(**base)


CONDITIONS = [
    # (condition, request, matches)
    ({"Field": "host-header", "Values": ["shop.example.com"]}, req(), True),
    ({"Field": "host-header", "HostHeaderConfig": {"Values": ["*.EXAMPLE.com"]}}, req(), True),  # case-insensitive
    ({"Field": "host-header", "Values": ["shop.example.com"]}, req(host="shop.example.com:8080"), True),  # port
    ({"Field": "host-header", "Values": ["sho?.example.com"]}, req(), True),
    ({"Field": "host-header", "Values": ["sh?.example.com"]}, req(), False),  # ? is exactly one character
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/cart/*"]}}, req(), True),
    ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/CART/*"]}}, req(), False),  # case-sensitive
    ({"Field": "path-pattern", "Values": ["/cart*"]}, req(path="/cart"), True),  # * may be empty
    ({"Field": "path-pattern", "Values": ["/cart"]}, req(path="/cart", query=(("a", "b"),)), True),  # path only
    (
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["TRUE"]}},
        req(headers={"x-canary": ("true",)}),
        True,
    ),
    (
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["t*"]}},
        req(headers={}),
        False,
    ),
    (
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "Values": ["*Mobile*"]}},
        req(headers={"user-agent": ("Foo Mobile/1",)}),
        True,
    ),
    (
        {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "beta", "Value": "on"}]}},
        req(query=(("BETA", "ON"),)),
        True,
    ),  # case-insensitive
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "o?"}]}}, req(query=(("x", "on"),)), True),
    (
        {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "beta", "Value": "on"}]}},
        req(query=(("beta", "off"),)),
        False,
    ),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST", "GET"]}}, req(), True),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["get"]}}, req(), False),  # case
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}, req(source_ip="10.1.2.3"), True),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}, req(source_ip="127.0.0.1"), False),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["::1/128"]}}, req(source_ip="::1"), True),
    ({"Field": "unknown-field", "Values": ["*"]}, req(), False),
]


@pytest.mark.parametrize(("condition", "request_", "expected"), CONDITIONS)
def test_a_condition_matches_as_alb_documents(condition, request_, expected):
    assert albrules.condition_matches(condition, request_) is expected


def test_rules_go_by_priority_then_the_default():
    path = {"Field": "path-pattern", "Values": ["/cart/*"]}
    host = {"Field": "host-header", "Values": ["shop.example.com"]}
    rules = [
        Rule(None, (), ({"Type": "fixed-response"},)),
        Rule(20, (path,), ({"Type": "forward", "n": 20},)),
        Rule(5, (path, {"Field": "http-request-method", "Values": ["POST"]}), ({"n": 5},)),  # all must match
        Rule(10, (host,), ({"n": 10},)),
    ]
    assert albrules.select(rules, req()).priority == 10
    assert albrules.select(rules, req(method="POST")).priority == 5
    assert albrules.select(rules, req(host="other.example.com")).priority == 20
    assert albrules.select(rules, req(host="other.example.com", path="/")).priority is None


FORWARDS = [
    # (action, groups with weights, sticky seconds)
    ({"Type": "forward", "TargetGroupArn": "a"}, (("a", 1),), None),
    (
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": "a", "Weight": "995"}, {"TargetGroupArn": "b", "Weight": 5}]
            },
        },
        (("a", 995), ("b", 5)),
        None,
    ),
    (
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": "a"}],
                "TargetGroupStickinessConfig": {"Enabled": "true", "DurationSeconds": "120"},
            },
        },
        (("a", 1),),
        120,
    ),
]


@pytest.mark.parametrize(("action", "groups", "sticky"), FORWARDS)
def test_a_forward_action_reads_as_aws_shows_it(action, groups, sticky):
    assert albrules.forward_of(action) == Forward(groups, sticky)


def test_the_weighted_choice_is_proportional_and_never_picks_weight_0():
    forward = Forward((("a", 995), ("b", 5), ("c", 0)), None)
    rng = random.Random(7)
    picks = [albrules.pick_group(forward, rng.random) for _ in range(200_000)]
    assert picks.count("c") == 0
    share = picks.count("b") / len(picks)
    assert abs(share - 0.005) < 4 * (0.005 * 0.995 / len(picks)) ** 0.5
    assert albrules.pick_group(Forward((("a", 0),), None), rng.random) is None
    assert albrules.pick_group(forward, lambda: 0.999999) == "b"  # the end of the range is the last weighted


def test_a_stickiness_cookie_holds_while_valid_and_its_group_is_in_the_forward():
    forward = Forward((("a", 1000), ("b", 0)), 60)
    cookie = albrules.sticky_value("b", expires=1060)
    assert albrules.sticky_group(cookie, forward, now=1000) == "b"  # weight 0 does not break stickiness
    assert albrules.sticky_group(cookie, forward, now=1061) is None  # expired
    assert albrules.sticky_group(cookie, Forward((("a", 1),), 60), now=1000) is None  # group left the forward
    assert albrules.sticky_group(cookie, Forward(forward.groups, None), now=1000) is None  # stickiness off
    assert albrules.sticky_group("not base64!", forward, now=1000) is None


REDIRECTS = [
    ({"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}, "https://shop.example.com/cart/items?a=1"),
    (
        {"Host": "new.#{host}", "Path": "/v2/#{path}", "Query": "x=#{query}"},
        "http://new.shop.example.com/v2/cart/items?x=a=1",
    ),
    ({"Port": "8080", "Query": ""}, "http://shop.example.com:8080/cart/items"),
]


@pytest.mark.parametrize(("config", "location"), REDIRECTS)
def test_a_redirect_fills_in_its_keys(config, location):
    assert albrules.redirect_location(config, req(query=(("a", "1"),))) == location


@pytest.mark.parametrize(
    ("matcher", "status", "accepted"),
    [
        (None, 200, True),
        ({"HttpCode": "200"}, 204, False),
        ({"HttpCode": "200-299"}, 204, True),
        ({"HttpCode": "200,302"}, 302, True),
        ({"HttpCode": "200,302"}, 301, False),
    ],
)
def test_the_health_check_matcher(matcher, status, accepted):
    assert albrules.matcher_accepts(matcher, status) is accepted
