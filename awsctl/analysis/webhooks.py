"""Flagger-compatible webhooks: an HTTP POST of a JSON payload; a status above 202 or a timeout fails. A
redirect is such a status: it is never followed (awsctl/outbound.py).

Gates (confirm-*) and checks (pre-rollout, rollout) need every hook of their type to pass;
notifications (post-rollout, event) are best effort and never block a rollout.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from awsctl import outbound
from awsctl.api.canary import Webhook

log = logging.getLogger("awsctl.webhooks")
MAX_SUCCESS_STATUS = 202


@dataclass(frozen=True)
class HookResult:
    hook: str
    ok: bool
    detail: str


def payload(name: str, namespace: str, phase: str, checksum: str, metadata: Mapping[str, str]) -> dict:
    return {"name": name, "namespace": namespace, "phase": phase, "checksum": checksum, "metadata": dict(metadata)}


def call(hook: Webhook, body: Mapping) -> HookResult:
    request = urllib.request.Request(
        hook.url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with outbound.opener().open(request, timeout=hook.timeout_seconds) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        return HookResult(hook.name, False, f"webhook {hook.name} ({hook.type}) did not answer: {reason}")
    if status > MAX_SUCCESS_STATUS:
        return HookResult(hook.name, False, f"webhook {hook.name} ({hook.type}) answered {status}")
    return HookResult(hook.name, True, f"webhook {hook.name} answered {status}")


def run_all(hooks: Sequence[Webhook], body: Mapping) -> list[HookResult]:
    """Hooks of one type run in parallel, so a slow one costs its own timeout, not the sum."""
    if not hooks:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hooks))) as pool:
        results = list(
            pool.map(lambda h: call(h, {**body, "metadata": {**body.get("metadata", {}), **h.metadata}}), hooks)
        )
    for result in results:
        if not result.ok:
            log.warning(result.detail, extra={"webhook": result.hook})
    return results


def passed(results: Sequence[HookResult]) -> tuple[bool, str]:
    failures = [r.detail for r in results if not r.ok]
    return (not failures, "; ".join(failures))


def any_passed(results: Sequence[HookResult]) -> tuple[bool, str]:
    """Rollback hooks: one that passes is enough (Flagger), and it is named."""
    asked = [r.hook for r in results if r.ok]
    return (bool(asked), f"rollback webhook {', '.join(asked)} asked for it" if asked else "")
