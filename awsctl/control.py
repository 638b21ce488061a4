"""`awsctl promote | abort | retry | pause | resume`: a person steers a rollout, as with
`kubectl argo rollouts`.

Each command is a patch of the Canary (an annotation aimed at the current revision, or
`spec.suspend`), so RBAC decides who may do it and the API server's audit log records who did.
The operator answers within one interval (promote, abort and retry wake it at once). `--wait`
follows the Canary until the operator has carried the command out.
"""

from __future__ import annotations

import sys
import time

from awsctl.api import GROUP
from awsctl.api import canary as api
from awsctl.explain import CliError
from awsctl.kube.client import Kube, now_rfc3339
from awsctl.planning import commands

SAID = {
    commands.PROMOTE: "promoted",
    commands.PROMOTE_FULL: "promoted (full)",
    commands.ABORT: "aborted",
    commands.RETRY: "retried",
}


def _canary(kube: Kube, namespace: str, name: str) -> dict:
    body = kube.get_custom(api.PLURAL, namespace, name)
    if body is None:
        raise CliError(
            f'canary "{name}" not found in namespace "{namespace}" (awsctl status -n {namespace} lists them)'
        )
    return body


def ask(kube: Kube, namespace: str, name: str, verb: str, wait: float = 0.0) -> int:
    """promote, promote-full, abort, retry: refused in a phase where it cannot act (one line, exit 1)."""
    status = _canary(kube, namespace, name).get("status") or {}
    phase = status.get("phase") or ""
    why = commands.refusal(verb, phase, name)
    if why:
        raise CliError(why)
    revision = status.get("lastAppliedSpec") or ""
    asked = commands.value(revision, now_rfc3339())
    kube.patch_custom(api.PLURAL, namespace, name, {"metadata": {"annotations": {commands.annotation(verb): asked}}})
    print(f"canary.{GROUP}/{name} {SAID[verb]} (revision {revision})", flush=True)
    if wait:
        return _follow(kube, namespace, name, lambda st: (st.get("commands") or {}).get(verb) == asked, wait)
    return 0


def suspend(kube: Kube, namespace: str, name: str, paused: bool) -> int:
    """pause / resume: spec.suspend, which freezes the rollout at its verified weight."""
    body = _canary(kube, namespace, name)
    if bool((body.get("spec") or {}).get("suspend")) == paused:
        print(f"canary.{GROUP}/{name} already {'paused' if paused else 'running'}")
        return 0
    kube.patch_custom(api.PLURAL, namespace, name, {"spec": {"suspend": paused}})
    print(f"canary.{GROUP}/{name} {'paused' if paused else 'resumed'}")
    return 0


def _follow(kube: Kube, namespace: str, name: str, done, timeout: float) -> int:
    """Prints each new phase and message until `done(status)`; exit 1 when the time is up."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status = _canary(kube, namespace, name).get("status") or {}
        shown = (status.get("phase"), status.get("canaryWeight"), status.get("message"))
        if shown != last:
            print(f"  {shown[0]:<16} {shown[1] or 0:>5g}%  {shown[2] or ''}", flush=True)
            last = shown
        if done(status):
            return 0
        time.sleep(1.0)
    print(
        f"error: the operator did not carry the command out within {timeout:g}s (is awsctl running? "
        f"kubectl -n awsctl-system logs deploy/awsctl)",
        file=sys.stderr,
    )
    return 1
