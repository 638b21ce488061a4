"""Delivers alerts on one background thread: a rollout never waits for Slack.

Each piece of news goes to every alert of the Canary that hears its severity. The provider and its
Secret are read when the news is sent (a rotated webhook URL is used at once). A failed delivery is
retried with back-off and logged; one that still fails is dropped with a Warning event on the Canary,
so a person sees that an alert went missing, and the rollout goes on.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from awsctl import outbound
from awsctl.api import alert_provider
from awsctl.api.canary import Alert
from awsctl.api.schema import SpecError
from awsctl.kube.client import Kube, rfc3339
from awsctl.planning import alerts
from awsctl.planning.conditions import set_condition

log = logging.getLogger("awsctl.alerts")
RETRY_DELAYS = (1.0, 2.0, 4.0)  # after the first attempt; four attempts in all
TIMEOUT = 10.0
BACKLOG = 1000  # news waiting to be sent; past it news is dropped (and logged), never queued without bound


class Undeliverable(Exception):
    """This alert cannot be sent at all (no provider, no Secret, a bad spec): retrying will not help."""

    def __init__(self, message: str, reason: str = "ProviderNotReady", provider: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.provider = provider  # the AlertProvider as read, for its condition (None when it does not exist)


def _reason(err: BaseException) -> str:
    """Why a delivery failed, never empty (some socket errors print as nothing)."""
    reason = getattr(err, "reason", None) or err
    return str(reason) or type(reason).__name__


class Alerter:
    def __init__(self, kube: Kube, sleep: Callable[[float], None] = time.sleep):
        self.kube = kube
        self.sleep = sleep
        self._queue: queue.Queue = queue.Queue(BACKLOG)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._open = outbound.opener().open

    def send(self, body: dict, wanted: tuple[Alert, ...], news: alerts.News) -> None:
        """Queues `news` for each alert that hears it; returns at once."""
        chosen = [a for a in wanted if alerts.hears(a.severity, news.severity)]
        if not chosen:
            return
        self._start()
        for alert in chosen:
            try:
                self._queue.put_nowait((body, alert, news))
            except queue.Full:
                log.error(
                    "alert dropped: too many waiting to be sent",
                    extra={"canary": f"{news.namespace}/{news.name}", "alert": alert.name, "phase": news.phase},
                )

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            body, alert, news = self._queue.get()
            try:
                self._deliver(body, alert, news)
            except Exception:  # noqa: BLE001 - the delivery thread must outlive any one alert
                log.exception("alert delivery failed", extra={"alert": alert.name})

    def _deliver(self, body: dict, alert: Alert, news: alerts.News) -> None:
        where = {"canary": f"{news.namespace}/{news.name}", "alert": alert.name, "phase": news.phase}
        try:
            spec, address, provider = self._provider(alert, news.namespace)
        except Undeliverable as err:
            self._give_up(body, alert, str(err), where)
            self._mark(err.provider, False, err.reason, str(err))
            return
        data = json.dumps(alerts.payload(spec.type, news, spec.channel, spec.username)).encode()
        last = ""
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                self.sleep(delay)
            try:
                request = urllib.request.Request(
                    address,
                    data=data,
                    method="POST",
                    headers={"Content-Type": "application/json", "User-Agent": "awsctl"},
                )
                with self._open(request, timeout=TIMEOUT) as response:
                    response.read()
                log.info("alert sent", extra={**where, "provider": spec.type, "attempts": attempt + 1})
                self._mark(provider, True, "Delivered", f"the last alert was delivered ({alert.name})")
                return
            except urllib.error.HTTPError as err:
                last = f"HTTP {err.code}"
                if 400 <= err.code < 500 and err.code not in (408, 429):
                    break  # the provider refuses this request: sending it again will not change that
            except (urllib.error.URLError, OSError, ValueError) as err:
                last = _reason(err)
            log.warning("alert delivery failed; retrying", extra={**where, "attempt": attempt + 1, "error": last})
        self._give_up(body, alert, f"{spec.type} answered {last}", where)
        self._mark(
            provider, False, "DeliveryFailed", f"alert {alert.name} was not delivered: {spec.type} answered {last}"
        )

    def _provider(self, alert: Alert, namespace: str) -> tuple[alert_provider.AlertProviderSpec, str, dict]:
        ns = alert.provider_namespace or namespace
        raw = self.kube.get_custom(alert_provider.PLURAL, ns, alert.provider)
        if raw is None:
            raise Undeliverable(f"AlertProvider {ns}/{alert.provider} does not exist")
        try:
            spec = alert_provider.AlertProviderSpec.parse(raw.get("spec") or {})
        except SpecError as err:
            raise Undeliverable(f"AlertProvider {ns}/{alert.provider}: {err}", "InvalidSpec", raw) from None
        if spec.address:
            return spec, spec.address, raw
        secret = self.kube.get_secret(ns, spec.secret_name)
        encoded = ((secret or {}).get("data") or {}).get(alert_provider.SECRET_KEY)
        field = f"Secret {ns}/{spec.secret_name} key '{alert_provider.SECRET_KEY}'"
        if not encoded:
            raise Undeliverable(f"AlertProvider {ns}/{alert.provider}: {field} does not exist", "SecretNotFound", raw)
        address = base64.b64decode(encoded).decode().strip()
        try:  # the Secret's address is checked as the inline one is: only http(s) is ever opened
            alert_provider.check_address(address, field)
        except SpecError as err:
            raise Undeliverable(f"AlertProvider {ns}/{alert.provider}: {err}", "InvalidAddress", raw) from None
        return spec, address, raw

    def _mark(self, provider: dict | None, ready: bool, reason: str, message: str) -> None:
        """The AlertProvider's Ready condition, written only when it changes (not once per alert)."""
        if provider is None:
            return
        meta = provider["metadata"]
        current = (provider.get("status") or {}).get("conditions")
        found: dict = next((c for c in current or () if c.get("type") == "Ready"), {})
        if found.get("status") == ("True" if ready else "False") and found.get("reason") == reason:
            return
        conditions = set_condition(
            current,
            type="Ready",
            status=ready,
            reason=reason,
            message=message,
            now=rfc3339(time.time()),
            generation=meta.get("generation"),
        )
        try:
            self.kube.patch_status(alert_provider.PLURAL, meta["namespace"], meta["name"], {"conditions": conditions})
        except Exception as err:  # noqa: BLE001 - a condition that cannot be written never stops alerts
            log.warning("AlertProvider condition not written", extra={"provider": meta["name"], "error": str(err)})

    def _give_up(self, body: dict, alert: Alert, why: str, where: dict) -> None:
        message = f"alert {alert.name} was not delivered: {why}"
        log.error(message, extra=where)
        self.kube.event(body, type="Warning", reason="AlertFailed", message=message)
