"""AlertProvider: where a Canary's alerts go (Flagger's model): a Slack, Microsoft Teams or Discord
incoming webhook, or any HTTP endpoint that takes JSON. The address is a secret (it is the
credential), so it comes from a Secret's `address` key; an inline address is for tests and demos."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from awsctl.api import GROUP, VERSION
from awsctl.api.schema import SpecError, crd

KIND = "AlertProvider"
PLURAL = "alertproviders"
SHORT_NAMES = ["alp"]
SECRET_KEY = "address"
TYPES = ("slack", "msteams", "discord", "generic")
SEVERITIES = ("info", "warn", "error")  # an alert hears news of its severity and above


@dataclass(frozen=True)
class AlertProviderSpec:
    type: str
    address: str  # inline; empty when it comes from the Secret
    secret_name: str
    channel: str
    username: str

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> AlertProviderSpec:
        kind = spec.get("type")
        if kind not in TYPES:
            raise SpecError("spec.type", f"{kind!r} is not one of {', '.join(TYPES)}")
        address = str(spec.get("address") or "")
        secret = str((spec.get("secretRef") or {}).get("name") or "")
        if not address and not secret:
            raise SpecError("spec.secretRef.name", f"set a Secret whose '{SECRET_KEY}' key holds the webhook URL")
        if address and not address.startswith(("http://", "https://")):
            raise SpecError("spec.address", f"{address!r} is not an http(s) URL")
        return cls(kind, address, secret, str(spec.get("channel") or ""), str(spec.get("username") or ""))


def schema() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": list(TYPES)},
            "secretRef": {
                "type": "object",
                "required": ["name"],
                "description": f"A Secret in this namespace; its '{SECRET_KEY}' key holds the incoming-webhook URL.",
                "properties": {"name": {"type": "string"}},
            },
            "address": {
                "type": "string",
                "description": "The URL inline (prefer secretRef: the URL is the credential).",
            },
            "channel": {"type": "string", "description": "Slack channel, overriding the webhook's own."},
            "username": {"type": "string", "description": "Sender name shown with each message (default awsctl)."},
        },
    }
    return {"type": "object", "required": ["spec"], "properties": {"spec": spec}}


def definition() -> dict[str, Any]:
    out = crd(
        group=GROUP,
        version=VERSION,
        kind=KIND,
        plural=PLURAL,
        short_names=SHORT_NAMES,
        schema=schema(),
        columns=[
            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )
    del out["spec"]["versions"][0]["subresources"]  # configuration only: nothing writes a status
    return out
