"""The trust boundary's decisions: which TrafficGrants select a namespace, and the first ask none grants."""

import pytest

from awsctl.api.canary import CanarySpec
from awsctl.api.grant import Grant, everything
from awsctl.api.schema import SpecError
from awsctl.planning import grants as g

SHARED = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shared/50dc6c495c0c9188/f2f7dc8efc522ab2"
SHARED2 = SHARED.rsplit("/", 1)[0] + "/0000000000000002"  # another listener of the same load balancer
OTHER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/payments/60dc6c495c0c9188/a2f7dc8efc522ab2"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-web/73e2d6bc24d8a067"

SHOP = Grant.parse(
    "shop",
    {
        "namespaces": {"names": ["shop"], "selector": {"matchLabels": {"team": "shop"}}},
        "listeners": ["arn:aws:elasticloadbalancing:*:*:listener/app/shared/*"],
        "rulePriorities": [{"from": 100, "to": 199}],
        "targetGroups": ["shop-*"],
        "alarms": ["shop-*"],
        "metricNamespaces": ["AWS/ApplicationELB", "Shop/*"],
        "alertProviders": ["monitoring/slack"],
    },
)


def canary(**lb) -> CanarySpec:
    return CanarySpec.parse(
        {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": SHARED, **lb}}
    )


def test_a_grant_selects_namespaces_by_name_or_by_label_as_kubernetes_reads_a_selector():
    table = [
        # (namespaces, namespace, labels, selected)
        ({"names": ["shop"]}, "shop", {}, True),
        ({"names": ["shop"]}, "payments", {"team": "shop"}, False),
        ({"selector": {}}, "anything", {}, True),  # an empty selector selects every namespace
        ({"selector": {"matchLabels": {"team": "shop"}}}, "a", {"team": "shop", "x": "y"}, True),
        ({"selector": {"matchLabels": {"team": "shop"}}}, "a", {"team": "pay"}, False),
        (
            {"selector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}},
            "n",
            {"team": "b"},
            True,
        ),
        ({"selector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}}, "n", {}, True),
        (
            {"selector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}},
            "n",
            {"team": "a"},
            False,
        ),
        ({"selector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}}, "n", {}, False),
        ({"selector": {"matchExpressions": [{"key": "no", "operator": "DoesNotExist"}]}}, "n", {"no": ""}, False),
    ]
    for namespaces, ns, labels, selected in table:
        grant = Grant.parse("t", {"namespaces": namespaces})
        assert g.selects(grant, ns, labels) is selected, (namespaces, ns, labels)


def test_a_grant_without_namespaces_or_with_a_reversed_range_is_refused():
    with pytest.raises(SpecError) as err:
        Grant.parse("t", {"namespaces": {}})
    assert err.value.field == "spec.namespaces"
    with pytest.raises(SpecError) as err:
        Grant.parse("t", {"namespaces": {"names": ["a"]}, "rulePriorities": [{"from": 9, "to": 3}]})
    assert err.value.field == "spec.rulePriorities[0]"


def test_what_a_canary_asks_for_is_refused_unless_a_grant_that_selects_its_namespace_allows_it():
    ab = {"iterations": 2, "match": [{"headers": {"x-canary": {"exact": "1"}}}]}
    custom = {"name": "errors", "thresholdRange": {"max": 1}}
    table = [
        # (namespace, labels, spec, refused field (None: granted), words of the message)
        ("shop", {}, canary(rule={"priority": 150}), None, ""),
        ("web", {"team": "shop"}, canary(rule={"priority": 150}), None, ""),  # by label
        ("payments", {}, canary(rule={"priority": 150}), "spec.loadBalancer.listenerARN", "no TrafficGrant selects"),
        ("shop", {}, canary(listenerARN=OTHER, rule={"priority": 150}), "spec.loadBalancer.listenerARN", "listener"),
        ("shop", {}, canary(rule={"priority": 10}), "spec.loadBalancer.rule.priority", "rule priority 10"),
        ("shop", {}, canary(), "spec.loadBalancer.listenerARN", "default action"),  # never by default
        # every further route asks as the first does: its listener, its priority or the default action
        (
            "shop",
            {},
            canary(rule={"priority": 150}, routes=[{"listenerARN": SHARED2, "rule": {"priority": 160}}]),
            None,
            "",
        ),
        (
            "shop",
            {},
            canary(rule={"priority": 150}, routes=[{"listenerARN": SHARED2, "rule": {"priority": 5}}]),
            "spec.loadBalancer.routes[0].rule.priority",
            "rule priority 5",
        ),
        (
            "shop",
            {},
            canary(rule={"priority": 150}, routes=[{"listenerARN": SHARED2}]),
            "spec.loadBalancer.routes[0].listenerARN",
            "default action",
        ),
        # An A/B rule sits just below the rule: at 100 it would take 99, outside the range.
        ("shop", {}, CanarySpec.parse({**_raw(100), "analysis": ab}), "spec.analysis.match", "rule priority 99"),
        ("shop", {}, CanarySpec.parse({**_raw(101), "analysis": ab}), None, ""),
        ("shop", {}, _with(alarms=[{"name": "shop-5xx"}]), None, ""),
        (
            "shop",
            {},
            _with(alarms=[{"name": "arn:aws:cloudwatch:us-east-1:1:alarm:pay-5xx"}]),
            "spec.analysis.alarms[0].name",
            "alarm pay-5xx",
        ),
        ("shop", {}, _with(metrics=[{**custom, "query": [_stat("Shop/Orders")]}]), None, ""),
        (
            "shop",
            {},
            _with(metrics=[{**custom, "query": [_stat("AWS/RDS")]}]),
            "spec.analysis.metrics[0].query",
            "AWS/RDS",
        ),
        (
            "shop",
            {},
            _with(metrics=[{**custom, "query": [{"Id": "s", "Expression": "SEARCH('x', 'Sum', 60)"}]}]),
            "spec.analysis.metrics[0].query",
            "SEARCH",
        ),
        ("shop", {}, _alerts("monitoring", "slack"), None, ""),
        ("shop", {}, _alerts("payments", "pager"), "spec.alerts[0].providerRef", "AlertProvider payments/pager"),
        ("shop", {}, _alerts("", "own"), None, ""),  # its own namespace's: always
    ]
    for namespace, labels, spec, field, words in table:
        refused = g.refusal([SHOP], namespace, labels, g.canary_asks(spec, namespace))
        if field is None:
            assert refused is None, (namespace, refused)
            continue
        assert refused is not None and refused.field == field and refused.reason == "NotGranted", (namespace, refused)
        assert words in refused.message and f"namespace {namespace}" in refused.message, refused.message


def test_grants_add_up_and_one_grants_everything():
    more = Grant.parse("shop-more", {"namespaces": {"names": ["shop"]}, "rulePriorities": [{"from": 5, "to": 10}]})
    spec = canary(rule={"priority": 10})
    assert g.refusal([SHOP], "shop", {}, g.canary_asks(spec, "shop")) is not None
    assert g.refusal([SHOP, more], "shop", {}, g.canary_asks(spec, "shop")) is None
    everything_ = Grant.parse("all", everything())
    for asks in (g.canary_asks(canary(), "any"), g.binding_asks(TG, "spec.targetGroupARN", own_canarys=False)):
        assert g.refusal([everything_], "any", {}, asks) is None
    unless = Grant.parse("all", everything(unless_label="off"))
    assert g.refusal([unless], "any", {"off": "1"}, g.canary_asks(canary(), "any")) is not None


def test_a_binding_fills_only_a_granted_group_or_its_own_canarys():
    table = [
        # (group, own canary's, refused)
        (TG, False, False),  # granted by name pattern (shop-*), given as an ARN
        ("shop-api", False, False),
        ("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pay-web/1", False, True),
        ("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pay-web/1", True, False),
    ]
    for group, own, refused in table:
        out = g.refusal([SHOP], "shop", {}, g.binding_asks(group, "spec.targetGroupARN", own))
        assert (out is not None) is refused, (group, out)
        if out:
            assert out.field == "spec.targetGroupARN" and "targetGroups" in out.message


def _raw(priority: int) -> dict:
    return {
        "targetRef": {"name": "web"},
        "service": {"port": 80},
        "loadBalancer": {"listenerARN": SHARED, "rule": {"priority": priority}},
    }


def _with(**analysis) -> CanarySpec:
    return CanarySpec.parse({**_raw(150), "analysis": analysis})


def _stat(namespace: str) -> dict:
    return {
        "Id": "e",
        "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Errors"}, "Period": 60, "Stat": "Sum"},
    }


def _alerts(namespace: str, name: str) -> CanarySpec:
    ref = {"name": name, **({"namespace": namespace} if namespace else {})}
    return CanarySpec.parse({**_raw(150), "alerts": [{"providerRef": ref}]})
