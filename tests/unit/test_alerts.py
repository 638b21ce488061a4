"""Alerts: who hears what, each provider's message, and delivery that retries and never blocks."""

import base64
import time

from awsctl.api.canary import Alert, CanarySpec
from awsctl.controllers.alerts import Alerter
from awsctl.planning import alerts
from tests.webhooks import webhook_server

NEWS = alerts.News(
    name="web",
    namespace="shop",
    phase="Failed",
    weight=0.0,
    reason="Failed",
    message="rolling back revision abc: awsctl abort asked for it",
    revision="abc",
    severity="error",
    time="2026-11-23T02:00:00Z",
)


class Cluster:
    """The three reads and one write the Alerter makes, over a dict of objects."""

    def __init__(self, providers, secrets=None):
        self.providers, self.secrets, self.events = providers, secrets or {}, []

    def get_custom(self, plural, namespace, name):
        assert plural == "alertproviders"
        spec = self.providers.get((namespace, name))
        return {"spec": spec} if spec is not None else None

    def get_secret(self, namespace, name):
        data = self.secrets.get((namespace, name))
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}} if data else None

    def event(self, obj, *, type, reason, message):
        self.events.append((type, reason, message))


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_severity_filters_like_flagger():
    assert alerts.severity_of("Failed", "Warning") == "error"
    assert alerts.severity_of("Progressing", "Warning") == "warn"
    assert alerts.severity_of("Succeeded", "Normal") == "info"
    assert alerts.hears("info", "info") and alerts.hears("warn", "error") and not alerts.hears("error", "warn")


def test_each_provider_gets_its_own_format_naming_canary_phase_weight_and_reason():
    slack = alerts.payload("slack", NEWS, channel="#deploys", username="bot")
    assert slack["channel"] == "#deploys" and slack["username"] == "bot" and "web.shop: Failed at 0%" in slack["text"]
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert fields == {"Canary": "shop/web", "Phase": "Failed", "Weight": "0%", "Revision": "abc", "Reason": "Failed"}
    teams = alerts.payload("msteams", NEWS)
    assert teams["@type"] == "MessageCard" and teams["sections"][0]["text"] == NEWS.message
    discord = alerts.payload("discord", NEWS)
    assert discord["embeds"][0]["description"] == NEWS.message and discord["embeds"][0]["color"] == 0xE01E5A
    generic = alerts.payload("generic", NEWS)
    assert generic["phase"] == "Failed" and generic["weight"] == 0.0 and generic["reason"] == "Failed"


def test_canary_spec_alerts_are_parsed_and_checked():
    base = {
        "targetRef": {"name": "web"},
        "service": {"port": 80},
        "loadBalancer": {"listenerARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/c"},
    }
    spec = CanarySpec.parse(
        {**base, "alerts": [{"name": "team", "severity": "warn", "providerRef": {"name": "slack", "namespace": "ops"}}]}
    )
    assert spec.alerts == (Alert("team", "warn", "slack", "ops"),)
    try:
        CanarySpec.parse({**base, "alerts": [{"severity": "loud", "providerRef": {"name": "x"}}]})
    except ValueError as err:
        assert "spec.alerts[0].severity" in str(err)
    else:
        raise AssertionError("a bad severity was accepted")


def test_delivery_retries_a_failing_receiver_and_reads_the_address_from_the_secret():
    with webhook_server() as hooks:
        hooks.respond("/slack", 503)
        cluster = Cluster(
            {("shop", "slack"): {"type": "slack", "secretRef": {"name": "hook"}}},
            {("shop", "hook"): {"address": f"{hooks.url}/slack"}},
        )
        sleeps = []

        def sleep(seconds):
            sleeps.append(seconds)
            if len(sleeps) == 2:
                hooks.respond("/slack", 200)  # the receiver recovers before the third attempt

        alerter = Alerter(cluster, sleep=sleep)
        started = time.monotonic()
        alerter.send({"metadata": {"name": "web", "namespace": "shop"}}, (Alert("a", "info", "slack", ""),), NEWS)
        assert time.monotonic() - started < 0.5  # the rollout never waits for delivery
        wait(lambda: [s for _, s, _ in hooks.answered] == [503, 503, 200])
        assert sleeps == [1.0, 2.0] and hooks.received("/slack")[-1]["attachments"][0]["text"] == NEWS.message
        assert cluster.events == []


def test_an_undeliverable_alert_is_given_up_with_a_warning_event_and_filtered_news_is_not_sent():
    with webhook_server() as hooks:
        hooks.respond("/gone", 404)
        cluster = Cluster({("shop", "gen"): {"type": "generic", "address": f"{hooks.url}/gone"}})
        alerter = Alerter(cluster, sleep=lambda s: None)
        body = {"metadata": {"name": "web", "namespace": "shop"}}
        alerter.send(body, (Alert("quiet", "error", "gen", ""),), alerts.News(**{**NEWS.__dict__, "severity": "info"}))
        alerter.send(body, (Alert("a", "info", "gen", ""), Alert("b", "info", "missing", "")), NEWS)
        wait(lambda: len(cluster.events) == 2)
        assert len(hooks.answered) == 1  # a 404 is not retried; the info news never reached the error-only alert
        reasons = sorted(m for _, _, m in cluster.events)
        assert reasons[0].startswith("alert a was not delivered: generic answered HTTP 404")
        assert "AlertProvider shop/missing does not exist" in reasons[1]
