"""Rollout commands (`awsctl promote | abort | retry`) as annotations on the Canary.

A command is an annotation `awsctl.io/<verb>: "<revision> <issued-at>"`, so RBAC decides who may
patch Canaries and the audit log shows who did. It is aimed at one revision: a promote meant for
revision A never promotes revision B. The operator records each command it carried out (or that a
terminal phase made moot) in `status.commands`, so an annotation acts once, however long it stays.
Pausing and resuming are `spec.suspend`, which already freezes a rollout.
"""

from __future__ import annotations

from collections.abc import Mapping

from awsctl.api.phases import Phase

PREFIX = "awsctl.io/"
PROMOTE, PROMOTE_FULL, ABORT, RETRY = "promote", "promote-full", "abort", "retry"
VERBS = (PROMOTE, PROMOTE_FULL, ABORT, RETRY)
# What each verb needs: the phases it acts in (the CLI refuses it elsewhere, with the phase).
ACTS_IN = {
    PROMOTE: (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.BAKING),
    PROMOTE_FULL: (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.BAKING),
    ABORT: (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.BAKING),
    RETRY: (Phase.FAILED,),
}


def annotation(verb: str) -> str:
    return PREFIX + verb


def value(revision: str, issued_at: str) -> str:
    return f"{revision} {issued_at}"


def pending(annotations: Mapping[str, str] | None, handled: Mapping[str, str] | None, revision: str) -> frozenset[str]:
    """Verbs asked for `revision` (the one being rolled out, or the failed one) and not yet handled."""
    annotations, handled = annotations or {}, handled or {}
    out = set()
    for verb in VERBS:
        asked = annotations.get(annotation(verb))
        if asked and asked.split(" ", 1)[0] == revision and handled.get(verb) != asked:
            out.add(verb)
    return frozenset(out)


def handled_after(
    annotations: Mapping[str, str] | None, handled: Mapping[str, str] | None, done: frozenset[str]
) -> dict[str, str]:
    """`status.commands` once the verbs in `done` have been carried out (or made moot)."""
    out = dict(handled or {})
    for verb in done:
        asked = (annotations or {}).get(annotation(verb))
        if asked:
            out[verb] = asked
    return out


def refusal(verb: str, phase: str, name: str) -> str | None:
    """Why `verb` cannot act on a Canary in `phase` (one line for the CLI), or None when it can."""
    if phase in ACTS_IN[verb]:
        return None
    if verb == RETRY:
        return f"canary {name} is {phase or 'Initializing'}, not Failed: there is no failed revision to retry"
    return (
        f"canary {name} is {phase or 'Initializing'}: there is no rollout in progress to "
        f"{'abort' if verb == ABORT else 'promote'}"
    )
