"""AlertProvider: where a Canary's alerts go (Flagger's model): a Slack, Microsoft Teams or Discord
incoming webhook, or any HTTP endpoint that takes JSON. The address is a secret (it is the
credential), so it comes from a Secret's `address` key; an inline address is for tests and demos."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from 3.12

from awsctl.api.schema import Conditions, Model, SpecError, crd, object_schema, parse

KIND = "AlertProvider"
PLURAL = "alertproviders"
SHORT_NAMES = ["alp"]
SECRET_KEY = "address"
ProviderType = Literal["slack", "msteams", "discord", "generic"]
Severity = Literal["info", "warn", "error"]  # an alert hears news of its severity and above
TYPES: tuple[str, ...] = get_args(ProviderType)
SEVERITIES: tuple[str, ...] = get_args(Severity)


class SecretRefFields(Model):
    name: str


class AlertProviderFields(Model):
    type: ProviderType
    secret_ref: SecretRefFields | None = Field(
        None, description=f"A Secret in this namespace; its '{SECRET_KEY}' key holds the incoming-webhook URL."
    )
    address: str | None = Field(None, description="The URL inline (prefer secretRef: the URL is the credential).")
    channel: str | None = Field(None, description="Slack channel, overriding the webhook's own.")
    username: str | None = Field(None, description="Sender name shown with each message (default awsctl).")


@dataclass(frozen=True)
class AlertProviderSpec:
    type: str
    address: str  # inline; empty when it comes from the Secret
    secret_name: str
    channel: str
    username: str

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> AlertProviderSpec:
        fields = parse(AlertProviderFields, spec)
        secret = fields.secret_ref.name if fields.secret_ref else ""
        address = fields.address or ""
        if not address and not secret:
            raise SpecError("spec.secretRef.name", f"set a Secret whose '{SECRET_KEY}' key holds the webhook URL")
        if address:
            check_address(address, "spec.address")
        return cls(fields.type, address, secret, fields.channel or "", fields.username or "")


def check_address(address: str, field: str) -> None:
    """Only an http(s) URL with a host is ever opened (urllib would also open ftp:, file: and data:).
    The address is the credential: the refusal names the field and the scheme, never the address."""
    parts = urlsplit(address)
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"its scheme is {parts.scheme.lower()!r}" if parts.scheme else "it has no scheme"
        raise SpecError(field, f"not an http(s) URL ({scheme}); it is never opened")
    if not parts.hostname:
        raise SpecError(field, "an http(s) URL without a host; it is never opened")


class AlertProviderStatus(TypedDict, total=False):
    conditions: Conditions


def schema() -> dict[str, Any]:
    return object_schema(AlertProviderFields, AlertProviderStatus)


def definition() -> dict[str, Any]:
    return crd(
        kind=KIND,
        plural=PLURAL,
        short_names=SHORT_NAMES,
        schema=schema(),
        columns=[
            {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        status=True,  # Ready: whether its last delivery could be made (written when that changes)
    )
