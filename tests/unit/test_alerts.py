"""Alerts: who hears what, each provider's message, and delivery that retries and never blocks."""

import base64
import socket
import time

import pytest

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
        self.providers, self.secrets, self.events, self.statuses = providers, secrets or {}, [], {}

    def get_custom(self, plural, namespace, name):
        assert plural == "alertproviders"
        spec = self.providers.get((namespace, name))
        meta = {"name": name, "namespace": namespace, "generation": 1}
        status = self.statuses.get((namespace, name))
        return {"metadata": meta, "spec": spec, **({"status": status} if status else {})} if spec is not None else None

    def patch_status(self, plural, namespace, name, status):
        assert plural == "alertproviders"
        self.statuses[(namespace, name)] = status

    def ready(self, namespace, name):
        return next(c for c in self.statuses[(namespace, name)]["conditions"] if c["type"] == "Ready")

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


@pytest.mark.parametrize(
    "address, why",
    [
        ("ftp://127.0.0.1:2121/hook-token", "its scheme is 'ftp'"),
        ("file:///etc/hostname", "its scheme is 'file'"),
        ("data:text/plain,hook-token", "its scheme is 'data'"),
        ("hook-token", "it has no scheme"),
        ("https:///hook-token", "without a host"),
    ],
)
def test_an_address_from_a_secret_that_is_not_http_is_refused_never_opened_never_echoed(address, why):
    """Tried as a user would: an ftp:// Secret made the operator connect 15 times, and file:///etc/hostname
    was read from its disk and logged as sent. The Secret's address is now checked as the inline one is."""
    cluster = Cluster(
        {("shop", "hook"): {"type": "generic", "secretRef": {"name": "hook"}}}, {("shop", "hook"): {"address": address}}
    )
    alerter = Alerter(cluster, sleep=lambda s: None)
    opened = []
    alerter._open = lambda *a, **k: opened.append(a)  # the opener is never reached
    alerter.send({"metadata": {"name": "web", "namespace": "shop"}}, (Alert("a", "info", "hook", ""),), NEWS)
    wait(lambda: cluster.events)
    (_, reason, message), condition = cluster.events[0], cluster.ready("shop", "hook")
    assert reason == "AlertFailed" and opened == []
    assert "Secret shop/hook key 'address'" in message and why in message and "hook-token" not in message
    assert condition["status"] == "False" and condition["reason"] == "InvalidAddress"
    assert "hook-token" not in condition["message"]


def test_the_opener_opens_http_only_and_a_failure_always_has_a_reason():
    """Even past the check, the opener knows no scheme but http(s) (urllib's default one also opens ftp:,
    file: and data:), and a refused connection gives its reason (it was empty)."""
    from awsctl.outbound import opener

    for address in ("file:///etc/hostname", "data:text/plain,x", "ftp://127.0.0.1/x"):
        with pytest.raises(Exception, match="unknown url type"):
            opener().open(address, timeout=1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        cluster = Cluster({("shop", "gen"): {"type": "generic", "address": f"http://127.0.0.1:{port}/hook"}})
        Alerter(cluster, sleep=lambda s: None).send(
            {"metadata": {"name": "web", "namespace": "shop"}}, (Alert("a", "info", "gen", ""),), NEWS
        )
        wait(lambda: cluster.events)
    message = cluster.events[0][2]
    assert message.startswith("alert a was not delivered: generic answered ") and message.rstrip() != (
        "alert a was not delivered: generic answered"
    )
    assert "refused" in message.lower() and cluster.ready("shop", "gen")["reason"] == "DeliveryFailed"


def test_a_delivered_alert_marks_its_provider_ready_once():
    with webhook_server() as hooks:
        cluster = Cluster({("shop", "gen"): {"type": "generic", "address": f"{hooks.url}/ok"}})
        writes = []
        patch = cluster.patch_status
        cluster.patch_status = lambda *a: (writes.append(a), patch(*a))
        alerter = Alerter(cluster, sleep=lambda s: None)
        for _ in range(3):
            alerter.send({"metadata": {"name": "web", "namespace": "shop"}}, (Alert("a", "info", "gen", ""),), NEWS)
        wait(lambda: len(hooks.received("/ok")) == 3)
        wait(lambda: cluster.statuses)
        assert cluster.ready("shop", "gen")["reason"] == "Delivered" and len(writes) == 1
