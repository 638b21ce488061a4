"""Alerts on phase changes, Flagger's model: which alerts hear a piece of news, and the message each
provider type expects. Pure; controllers/alerts.py resolves providers and delivers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from awsctl.api.alert_provider import SEVERITIES
from awsctl.api.phases import Phase

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_COLOUR = {"info": "#2eb67d", "warn": "#ecb22e", "error": "#e01e5a"}


@dataclass(frozen=True)
class News:
    """One phase change of one Canary."""

    name: str
    namespace: str
    phase: str
    weight: float  # verified canary percent
    reason: str
    message: str
    revision: str
    severity: str  # info | warn | error
    time: str  # RFC 3339

    @property
    def title(self) -> str:
        return f"{self.name}.{self.namespace}: {self.phase} at {self.weight:g}%"


def severity_of(phase: str, event_type: str | None) -> str:
    if phase == Phase.FAILED:
        return "error"
    return "warn" if event_type == "Warning" else "info"


def hears(alert_severity: str, news_severity: str) -> bool:
    """An alert at `info` hears everything, at `warn` warnings and errors, at `error` only errors."""
    return _RANK[news_severity] >= _RANK.get(alert_severity, 0)


def payload(kind: str, news: News, channel: str = "", username: str = "") -> dict[str, Any]:
    """The JSON body each provider type's incoming webhook accepts."""
    facts = {
        "Canary": f"{news.namespace}/{news.name}",
        "Phase": news.phase,
        "Weight": f"{news.weight:g}%",
        "Revision": news.revision or "-",
        "Reason": news.reason,
    }
    sender = username or "awsctl"
    if kind == "slack":
        body = {
            "username": sender,
            "text": news.title,
            "attachments": [
                {
                    "color": _COLOUR[news.severity],
                    "text": news.message,
                    "ts": news.time,
                    "fields": [{"title": k, "value": v, "short": True} for k, v in facts.items()],
                }
            ],
        }
        return {**body, "channel": channel} if channel else body
    if kind == "msteams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": news.title,
            "themeColor": _COLOUR[news.severity].lstrip("#"),
            "sections": [
                {
                    "activityTitle": news.title,
                    "activitySubtitle": sender,
                    "text": news.message,
                    "facts": [{"name": k, "value": v} for k, v in facts.items()],
                }
            ],
        }
    if kind == "discord":
        return {
            "username": sender,
            "content": news.title,
            "embeds": [
                {
                    "title": news.title,
                    "description": news.message,
                    "timestamp": news.time,
                    "color": int(_COLOUR[news.severity].lstrip("#"), 16),
                    "fields": [{"name": k, "value": v, "inline": True} for k, v in facts.items()],
                }
            ],
        }
    return {
        "name": news.name,
        "namespace": news.namespace,
        "phase": news.phase,
        "weight": news.weight,
        "reason": news.reason,
        "message": news.message,
        "revision": news.revision,
        "severity": news.severity,
        "time": news.time,
        **({"channel": channel} if channel else {}),
    }
