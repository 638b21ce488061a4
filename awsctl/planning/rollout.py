"""The rollout state machine (Flagger's algorithm), as one pure function.

`decide(policy, state, observed)` returns either a `Step` (the next state and the actions
that lead to it) or an `Ask` for gate results it needs first (webhooks, analysis); the
shell runs those and calls `decide` again with the answers. The shell applies a Step in a
fixed order and stops at the first action that does not verify, so a weight change that
AWS does not show is never counted, and a side is never drained before its weight is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from awsctl.api.canary import NO_DATA_TOLERANCE, PROGRESS_DEADLINE_SECONDS
from awsctl.api.phases import STEADY, Phase, phase_of
from awsctl.planning.commands import ABORT, PROMOTE, PROMOTE_FULL, RETRY
from awsctl.planning.weights import FULL, next_step, percent, promotion_step

EventType = Literal["Normal", "Warning"]
ANALYSIS = "analysis"  # the pseudo-gate for rollout webhooks and metrics


@dataclass(frozen=True)
class Policy:
    """What the spec says about the rollout, in permille and seconds."""

    steps: tuple[int, ...]
    max_weight: int
    threshold: int
    step_promotion: int | None = None
    iterations: int | None = None  # set: analysis at weight 0 for this many runs (blue/green)
    progress_deadline: float = PROGRESS_DEADLINE_SECONDS
    skip_analysis: bool = False
    suspend: bool = False
    hooks: frozenset[str] = frozenset()  # webhook types the spec defines
    no_data_tolerance: int = NO_DATA_TOLERANCE  # consecutive no-data checks that hold; each further one fails
    bake_weight: int | None = None  # permille: bake at this weight after confirm-promotion
    bake_seconds: float = 0.0
    ab_testing: bool = False  # analysis.match: header/cookie routes send matching requests to the canary


@dataclass(frozen=True)
class RolloutState:
    """What status remembers between ticks (and across operator restarts)."""

    phase: Phase = Phase.INITIALIZING
    weight: int = 0  # verified canary permille
    failed_checks: int = 0
    iterations: int = 0
    last_applied: str = ""
    last_promoted: str = ""
    transition_at: float = 0.0
    no_data: int = 0  # consecutive analysis checks without data
    unavailable_since: float = 0.0  # when the canary stopped being ready; 0 while it is

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", phase_of(self.phase))  # a status's string, or none yet


@dataclass(frozen=True)
class Observed:
    revision: str  # template hash of the target Deployment
    now: float
    primary_ready: bool  # primary Deployment fully rolled out
    primary_revision: str  # the template hash the primary was last given ("" when it has none)
    canary_ready: bool  # target Deployment rolled out, at least one pod available
    primary_healthy: bool  # every primary-side group has a healthy target
    canary_healthy: bool  # every canary-side group has a healthy target
    # a canary group that carries weight shows no healthy target in AWS, read this tick: ALB fails open to
    # its broken targets (or answers 503 when they are initial or draining), so the weight goes back at once
    canary_void: bool = False
    gates: Mapping[str, bool | None] = field(default_factory=dict)  # answers to Asks; None = no data yet
    details: Mapping[str, str] = field(default_factory=dict)  # why a gate failed, for messages
    commands: frozenset[str] = frozenset()  # pending `awsctl promote|abort|retry` for this revision
    # Gates whose missing data is "not yet": every period with data predates the canary's last quiet moment
    # (another revision's), and the first period after it may still be unpublished.
    pending: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ask:
    gates: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    state: RolloutState
    reason: str
    message: str  # "": nothing new to say, status keeps its message
    weight: int | None = None  # set this canary weight and verify it before the actions below
    promote: bool = False  # copy the target's template to the primary
    scale_canary: Literal["up", "down"] | None = None
    hooks: tuple[str, ...] = ()  # fire-and-forget webhooks (post-rollout)
    event: EventType | None = None  # post `message` as an event of this type
    commands: frozenset[str] = frozenset()  # the pending commands this step carries out
    ab_routes: bool = False  # the A/B routes should exist once this step's state holds


def needs_health(policy: Policy, st: RolloutState, revision: str) -> bool:
    """Target health is read only outside steady state: a steady tick costs one AWS read, not 1 + groups."""
    steady = st.phase in STEADY and revision in (st.last_applied, st.last_promoted)
    return not (steady or policy.suspend)


def at_rest(st: RolloutState, revision: str, spec_changed: bool) -> bool:
    """Nothing rolls out and nothing was asked: the revision is the one last applied or promoted and
    the spec did not change since the last tick."""
    return st.phase in STEADY and revision in (st.last_applied, st.last_promoted) and not spec_changed


def route_max_age(st: RolloutState, revision: str, spec_changed: bool, interval: float, drift_seconds: float) -> float:
    """How old a look at the live route may be. While anything rolls out, one analysis interval (as
    Flagger reads its routes each tick); at rest, one drift period, as a settled binding re-reads its
    group: a resting controller makes no AWS call, and a route changed by hand is still put back."""
    return max(interval, drift_seconds) if at_rest(st, revision, spec_changed) else interval


def ab_routes(policy: Policy, st: RolloutState, ob: Observed) -> bool:
    """A/B routes exist only while the analysis runs, and never towards an unready canary."""
    return policy.ab_testing and st.phase == Phase.PROGRESSING and ob.canary_ready and ob.canary_healthy


def decide(policy: Policy, st: RolloutState, ob: Observed) -> Step | Ask:
    out = _decide(policy, st, ob)
    return replace(out, ab_routes=ab_routes(policy, out.state, ob)) if isinstance(out, Step) else out


def _decide(policy: Policy, st: RolloutState, ob: Observed) -> Step | Ask:
    if policy.suspend:
        return Step(st, "Suspended", "spec.suspend is true: the rollout is frozen")
    phase = st.phase
    if phase == Phase.INITIALIZING:
        return _initialize(st, ob)
    if phase in STEADY or phase == Phase.WAITING:
        return _detect(policy, st, ob, phase)
    if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.BAKING):
        return _progress(policy, st, ob, phase)
    if phase == Phase.PROMOTING:
        return _promote(policy, st, ob)
    if phase == Phase.FINALISING:
        return _finalise(policy, st, ob)
    return Step(st, phase, f"{phase}: nothing to do")


def _gate(policy: Policy, ob: Observed, kind: str) -> bool | None | Ask:
    """A gate with no webhooks of its kind is open; otherwise ask the shell once per tick."""
    if kind != ANALYSIS and kind not in policy.hooks:
        return True
    if kind not in ob.gates:
        return Ask((kind,))
    return ob.gates[kind]


def _awaiting(ob: Observed, side: str) -> str:
    """What a side waits for in AWS: every target its bindings want, healthy; names the groups' states."""
    detail = ob.details.get(f"{side}-targets")
    return f"waiting for every {side} target to be healthy in AWS" + (f": {detail}" if detail else "")


def _why(ob: Observed, kind: str) -> str:
    return ob.details.get(kind) or f"{kind} failed"


def _initialize(st: RolloutState, ob: Observed) -> Step:
    if not ob.primary_ready:
        return Step(st, Phase.INITIALIZING, "waiting for the primary Deployment to become ready")
    if not ob.primary_healthy:
        return Step(st, Phase.INITIALIZING, _awaiting(ob, "primary"))
    # What the primary runs is what is promoted: a template change during Initializing is a new
    # revision, analysed as a canary on the next tick, never recorded as promoted unseen.
    runs = ob.primary_revision or ob.revision
    return _at_zero(
        st,
        replace(ob, revision=runs),
        Phase.INITIALIZED,
        "initialization done: all traffic on the primary",
        "down",
        last_promoted=runs,
    )


def _detect(policy: Policy, st: RolloutState, ob: Observed, phase: Phase) -> Step | Ask:
    if ob.revision == st.last_promoted:
        if phase == Phase.WAITING or st.last_applied != ob.revision:
            back = replace(st, phase=Phase.INITIALIZED if phase == Phase.WAITING else phase, last_applied=ob.revision)
            return Step(back, back.phase, "the target is back on the promoted revision: nothing to roll out")
        return Step(st, phase, _steady_message(st))
    if ob.revision == st.last_applied and phase == Phase.FAILED and RETRY in ob.commands:
        return _at_zero(
            st,
            ob,
            Phase.PROGRESSING,
            f"awsctl retry: restarting the analysis of revision {ob.revision} at weight 0",
            "up",
            commands=frozenset({RETRY}),
            no_data=0,
            unavailable_since=0.0,
        )
    if ob.revision == st.last_applied and phase != Phase.WAITING:
        return Step(st, phase, _steady_message(st))
    if phase == Phase.WAITING and "rollback" in policy.hooks:  # Flagger asks its rollback hooks here too
        rollback = _gate(policy, ob, "rollback")
        if isinstance(rollback, Ask):
            return rollback
        if rollback:
            return _rollback(
                replace(st, last_applied=ob.revision),
                ob,
                ob.details.get("rollback") or "a rollback webhook asked for it",
            )
    gate = _gate(policy, ob, "confirm-rollout")
    if isinstance(gate, Ask):
        return gate
    if not gate:
        waiting = replace(st, phase=Phase.WAITING, transition_at=st.transition_at if phase == Phase.WAITING else ob.now)
        return Step(
            waiting,
            Phase.WAITING,
            f"new revision {ob.revision} waits for confirm-rollout: {_why(ob, 'confirm-rollout')}",
            event=None if phase == Phase.WAITING else "Normal",
        )
    return _at_zero(
        st, ob, Phase.PROGRESSING, f"new revision {ob.revision} detected: starting the canary analysis", "up"
    )


def _at_zero(
    st: RolloutState,
    ob: Observed,
    phase: Phase,
    message: str,
    scale: Literal["up", "down"],
    commands: frozenset[str] = frozenset(),
    **changes: Any,
) -> Step:
    """Weight 0 with the counters reset for the observed revision: where an analysis starts (scale
    the canary up) or where the rollout settles without one (down)."""
    state = replace(
        st,
        phase=phase,
        weight=0,
        failed_checks=0,
        iterations=0,
        last_applied=ob.revision,
        transition_at=ob.now,
        **changes,
    )
    return Step(state, phase, message, weight=0, scale_canary=scale, event="Normal", commands=commands)


def _steady_message(st: RolloutState) -> str:
    if st.phase == Phase.FAILED and st.last_applied != st.last_promoted:
        return ""  # the rollback's own message says why, and stays until the next revision
    return f"the primary serves revision {st.last_promoted}"


def _rollback(st: RolloutState, ob: Observed, why: str, commands: frozenset[str] = frozenset()) -> Step:
    return _rolled_back(st, ob.now, why, commands)


def _rolled_back(st: RolloutState, now: float, why: str, commands: frozenset[str] = frozenset()) -> Step:
    failed = replace(st, phase=Phase.FAILED, weight=0, transition_at=now)
    return Step(
        failed,
        Phase.FAILED,
        f"rolled back revision {st.last_applied}: {why}",
        weight=0,
        scale_canary="down",
        hooks=("post-rollout",),
        event="Warning",
        commands=commands,
    )


def _progress(policy: Policy, st: RolloutState, ob: Observed, phase: Phase) -> Step | Ask:
    if ob.revision != st.last_applied:
        if ob.revision == st.last_promoted:
            return _at_zero(
                st, ob, Phase.SUCCEEDED, "the target went back to the promoted revision: canary stopped", "down"
            )
        return _at_zero(
            st, ob, Phase.PROGRESSING, f"new revision {ob.revision} during the analysis: restarting at weight 0", "up"
        )
    if ABORT in ob.commands:
        return _rollback(st, ob, "awsctl abort asked for it", frozenset({ABORT}))
    rollback = _gate(policy, ob, "rollback") if "rollback" in policy.hooks else False
    if isinstance(rollback, Ask):
        return rollback
    if rollback:
        return _rollback(st, ob, ob.details.get("rollback") or "a rollback webhook asked for it")
    if st.failed_checks >= policy.threshold:
        return _rollback(st, ob, f"{st.failed_checks} failed checks reached the threshold {policy.threshold}")
    if st.weight > 0 and ob.canary_void:
        return _rollback(
            st,
            ob,
            f"the canary carried {percent(st.weight):g}% with no healthy target in AWS "
            f"({ob.details.get('canary-void') or 'every target unhealthy, initial or draining'}): ALB fails open "
            "to broken targets",
        )
    if not (ob.canary_ready and ob.canary_healthy):
        # The deadline counts from when the canary became unavailable, not from the phase's start.
        since = st.unavailable_since or ob.now
        if ob.now - since > policy.progress_deadline:
            return _rollback(
                st,
                ob,
                f"progress deadline of {policy.progress_deadline:g}s exceeded: the canary "
                f"has not been ready for {ob.now - since:.0f}s",
            )
        waiting = replace(st, unavailable_since=since)
        if not ob.canary_ready:
            return Step(waiting, phase, "waiting for the canary Deployment to become ready")
        return Step(waiting, phase, _awaiting(ob, "canary"))
    st = replace(st, unavailable_since=0.0)
    if PROMOTE_FULL in ob.commands:
        return _start_promotion(
            st, ob, "awsctl promote --full: promoting without further analysis", frozenset({PROMOTE_FULL})
        )
    if policy.skip_analysis and phase != Phase.BAKING:
        return _start_promotion(st, ob, "spec.skipAnalysis is true: promoting without analysis")
    if st.weight == 0 and st.iterations == 0 and phase == Phase.PROGRESSING:
        pre = _gate(policy, ob, "pre-rollout")
        if isinstance(pre, Ask):
            return pre
        if not pre:
            return _failed_check(st, ob, "pre-rollout")
    analysed = st.weight > 0 or st.iterations > 0 or bool(policy.iterations)
    promote = PROMOTE in ob.commands
    if analysed or promote:
        # Also while waiting for promotion and while baking: a canary that degrades then is caught. An
        # `awsctl promote` at weight 0 needs this tick's analysis to pass too.
        analysis = _gate(policy, ob, ANALYSIS)
        if isinstance(analysis, Ask):
            return analysis
        if analysis is None and not analysed:
            # Nothing to judge at weight 0 (no traffic, no data): the promote waits for the first step's data.
            promote, analysis = False, True
        if analysis is None and ANALYSIS in ob.pending:  # only another revision's periods have data, so far
            why = ob.details.get(ANALYSIS) or "no metric period of this revision's is published yet"
            return Step(st, phase, f"holding at {percent(st.weight):g}% (not counted as no data): {why}")
        if analysis is None:  # no data: held, then counted as failed past the tolerance
            held = replace(st, no_data=st.no_data + 1)
            if held.no_data > policy.no_data_tolerance:
                if phase == Phase.BAKING:
                    return _rollback(held, ob, f"bake without data: {_why(ob, ANALYSIS)}")
                return _failed_check(held, ob, ANALYSIS, f"no data for {held.no_data} checks in a row")
            return Step(
                held,
                "AnalysisHeld",
                f"holding at {percent(st.weight):g}%: {_why(ob, ANALYSIS)} "
                f"(no data {held.no_data}/{policy.no_data_tolerance})",
                event="Normal",
            )
        st = replace(st, no_data=0)
        if not analysis:
            if phase == Phase.BAKING:  # the primary never stopped: back to it at once, in one verified write
                return _rollback(st, ob, f"bake failed: {_why(ob, ANALYSIS)}")
            return _failed_check(st, ob, ANALYSIS)
    if promote:  # the analysis of this tick passed
        return _start_promotion(
            st, ob, f"awsctl promote: skipping the remaining steps at {percent(st.weight):g}%", frozenset({PROMOTE})
        )
    if phase == Phase.BAKING:
        left = policy.bake_seconds - (ob.now - st.transition_at)
        if left > 0:
            return Step(st, Phase.BAKING, f"baking at {percent(st.weight):g}% with the primary warm: {left:.0f}s left")
        return _start_promotion(
            st,
            ob,
            f"bake passed: copying revision {st.last_applied} to the primary while the "
            f"canary carries {percent(st.weight):g}%",
        )
    if phase == Phase.WAITING_PROMOTION:
        return _ask_promotion(policy, st, ob)
    if policy.iterations:
        if st.iterations >= policy.iterations:
            return _ask_promotion(policy, st, ob)
        ran = replace(st, iterations=st.iterations + 1)
        return Step(ran, Phase.PROGRESSING, f"analysis {ran.iterations}/{policy.iterations} passed at weight 0")
    if st.weight >= policy.max_weight:
        return _ask_promotion(policy, st, ob)
    increase = _gate(policy, ob, "confirm-traffic-increase")
    if isinstance(increase, Ask):
        return increase
    if not increase:
        return Step(
            st, Phase.PROGRESSING, f"weight held at {percent(st.weight):g}%: {_why(ob, 'confirm-traffic-increase')}"
        )
    target = next_step(st.weight, policy.steps)
    stepped = replace(st, phase=Phase.PROGRESSING, weight=target, iterations=st.iterations + 1)
    return Step(
        stepped, Phase.PROGRESSING, f"advancing canary weight to {percent(target):g}%", weight=target, event="Normal"
    )


def _failed_check(st: RolloutState, ob: Observed, kind: str, why: str = "") -> Step:
    failed = replace(st, failed_checks=st.failed_checks + 1)
    return Step(
        failed, Phase.PROGRESSING, f"check {failed.failed_checks} failed: {why or _why(ob, kind)}", event="Warning"
    )


def _ask_promotion(policy: Policy, st: RolloutState, ob: Observed) -> Step | Ask:
    gate = _gate(policy, ob, "confirm-promotion")
    if isinstance(gate, Ask):
        return gate
    if not gate:
        waiting = replace(st, phase=Phase.WAITING_PROMOTION)
        return Step(
            waiting,
            Phase.WAITING_PROMOTION,
            f"waiting for confirm-promotion: {_why(ob, 'confirm-promotion')}",
            event=None if st.phase == Phase.WAITING_PROMOTION else "Normal",
        )
    if policy.iterations and not policy.ab_testing and policy.bake_weight is None and st.weight < FULL:
        # Blue/green (Flagger's runBlueGreen): all traffic to the canary first, one more analysis under
        # it, and only then the template is copied; the primary stays up to take it back at once.
        switched = replace(st, phase=Phase.PROGRESSING, weight=FULL)
        return Step(
            switched,
            Phase.PROGRESSING,
            "blue/green: all traffic to the canary; promoting after one more analysis",
            weight=FULL,
            event="Normal",
        )
    if policy.bake_weight is not None:
        baking = replace(st, phase=Phase.BAKING, weight=policy.bake_weight, transition_at=ob.now)
        return Step(
            baking,
            Phase.BAKING,
            f"baking at {percent(policy.bake_weight):g}% for {policy.bake_seconds:g}s: the "
            "primary stays warm at the rest",
            weight=policy.bake_weight,
            event="Normal",
        )
    return _start_promotion(st, ob, f"copying revision {st.last_applied} to the primary")


def _start_promotion(st: RolloutState, ob: Observed, message: str, commands: frozenset[str] = frozenset()) -> Step:
    promoting = replace(st, phase=Phase.PROMOTING, transition_at=ob.now)
    return Step(promoting, Phase.PROMOTING, message, promote=True, event="Normal", commands=commands)


def _promote(policy: Policy, st: RolloutState, ob: Observed) -> Step:
    """The template was copied at the transition (`_start_promotion`); here the primary rolls it out.
    A revision that arrives meanwhile is analysed after Succeeded, never copied along."""
    if ob.primary_revision != st.last_applied:
        if ob.revision == st.last_applied:  # the copy did not land, or someone undid it: the same revision again
            return Step(st, Phase.PROMOTING, f"copying revision {st.last_applied} to the primary", promote=True)
        return _rollback(
            st,
            ob,
            f"the primary never received revision {st.last_applied}, and the target moved on to {ob.revision} "
            "before it could be copied",
        )
    if not (ob.primary_ready and ob.primary_healthy):
        if ob.now - st.transition_at > policy.progress_deadline:
            return Step(
                st,
                STALLED,
                f"promotion stalled: the primary has not rolled out revision {st.last_applied}, ready and healthy in "
                f"AWS, within the progress deadline ({policy.progress_deadline:g}s); the canary keeps the traffic "
                "meanwhile. Look at the primary's pods and their targets' health",
                event="Warning",
            )
        if not ob.primary_ready:
            return Step(
                st, Phase.PROMOTING, f"waiting for the primary Deployment to roll out revision {st.last_applied}"
            )
        return Step(st, Phase.PROMOTING, _awaiting(ob, "primary"))
    target = _back_to_primary(policy, st, ob)
    finalising = replace(st, phase=Phase.FINALISING, weight=target, transition_at=ob.now)
    return Step(
        finalising,
        Phase.FINALISING,
        f"routing traffic back to the primary: canary at {percent(target):g}%{_arrived(st, ob)}",
        weight=target,
        event="Normal",
    )


STALLED = "PromotionStalled"  # the reason (event, Promoted condition, alert) of a Promoting past its deadline


def _back_to_primary(policy: Policy, st: RolloutState, ob: Observed) -> int:
    """The next canary weight on the way back to the primary: by stepWeightPromotion, or 0 at once when
    the target already runs a newer revision (its pods are no longer the ones analysed)."""
    if ob.revision != st.last_applied:
        return 0
    return promotion_step(st.weight, policy.step_promotion)


def _arrived(st: RolloutState, ob: Observed) -> str:
    if ob.revision == st.last_applied:
        return ""
    return f" (revision {ob.revision} arrived during the promotion: it is analysed once {st.last_applied} is promoted)"


def _finalise(policy: Policy, st: RolloutState, ob: Observed) -> Step:
    if st.weight > 0:
        target = _back_to_primary(policy, st, ob)
        stepped = replace(st, weight=target)
        return Step(
            stepped,
            Phase.FINALISING,
            f"routing traffic back to the primary: canary at {percent(target):g}%{_arrived(st, ob)}",
            weight=target,
        )
    done = replace(st, phase=Phase.SUCCEEDED, last_promoted=st.last_applied, failed_checks=0, transition_at=ob.now)
    return Step(
        done,
        Phase.SUCCEEDED,
        f"promotion of revision {st.last_applied} completed",
        weight=0,
        scale_canary="down",
        hooks=("post-rollout",),
        event="Normal",
    )


# Phases in which a canary may carry weight (or is about to): a refusal there must not freeze it.
IN_FLIGHT = (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.BAKING, Phase.PROMOTING, Phase.FINALISING)


def when_refused(
    st: RolloutState,
    now: float,
    refused_since: float,
    commands: frozenset[str],
    deadline: float,
    why: str,
    suspended: bool = False,
) -> Step | None:
    """A tick that stopped before `decide()` could run: the spec no longer parses, a backend or a group
    is missing, AWS refused a change. Nothing may freeze traffic (invariant 15): `awsctl abort` rolls
    back at once, and a refusal that outlasts the progress deadline rolls back too (unless suspended),
    from what status recorded. Returns that rollback, or None to hold the verified weight meanwhile."""
    if st.phase not in IN_FLIGHT:
        return None
    if ABORT in commands:
        return _rolled_back(
            st, now, f"awsctl abort asked for it while the Canary was refused: {why}", frozenset({ABORT})
        )
    if suspended or now - refused_since <= deadline:
        return None
    return _rolled_back(
        st, now, f"refused for {now - refused_since:.0f}s, past the progress deadline of {deadline:g}s: {why}"
    )


def let_go(due: float | None, now: float) -> bool:
    """Whether what a route change left behind may go: the canary scaled to 0 (`due` is status.scaleDownAt),
    or your apex Service pointed at the primary, whose old pods then leave your own group (status.apexAt):
    each the propagation allowance after the route change was verified, until when the load balancer's
    nodes may still route by the old rule (invariant 17). None: nothing is pending."""
    return due is None or now + 0.5 >= due


def evidence_since(quiet_since: float | None, step_since: float | None) -> float | None:
    """The moment before which no metric period counts for the current check: the later of when the canary's
    groups last went quiet (another revision's periods never count) and when the current weight was verified
    (each step earns its own evidence: a period from before it holds another weight's requests)."""
    moments = [m for m in (quiet_since, step_since) if m is not None]
    return max(moments) if moments else None
