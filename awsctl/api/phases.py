"""The phases of a Canary, Flagger's names: one spelling for status, decisions, the CRD and the CLI."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    BAKING = "Baking"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


STEADY = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED})  # nothing rolls out
FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED})  # a rollout ended, one way or the other


def phase_of(value: str | None) -> Phase:
    """A status's phase; none yet is Initializing."""
    return Phase(value or Phase.INITIALIZING)
