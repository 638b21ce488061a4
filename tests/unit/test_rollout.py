"""The rollout state machine, driven tick by tick as the shell drives it."""

from dataclasses import replace

import pytest

from awsctl.api.phases import Phase
from awsctl.planning.rollout import Ask, Observed, Policy, RolloutState, Step, decide, evidence_since, let_go

POLICY = Policy(steps=(5, 50, 200, 500), max_weight=500, threshold=2, progress_deadline=60)
READY = Observed(
    revision="v2",
    now=100.0,
    primary_ready=True,
    primary_revision="v2",
    canary_ready=True,
    primary_healthy=True,
    canary_healthy=True,
)
STEADY = RolloutState(phase="Initialized", last_applied="v1", last_promoted="v1", transition_at=0.0)


def run(policy, state, observed, answers=None):
    """Answers Asks like the shell does, then returns the Step."""
    answers = answers or {}
    gates = {}
    for _ in range(5):
        out = decide(policy, state, replace(observed, gates=gates))
        if isinstance(out, Step):
            return out
        for gate in out.gates:
            gates[gate] = answers.get(gate, True)
    raise AssertionError("decide kept asking")


def test_initialization_waits_for_a_healthy_primary_then_pins_weight_zero():
    waiting = run(POLICY, RolloutState(), replace(READY, primary_healthy=False, revision="v1"))
    assert waiting.state.phase == Phase.INITIALIZING and waiting.weight is None
    done = run(POLICY, RolloutState(), replace(READY, revision="v1", primary_revision="v1"))
    assert done.state.phase == "Initialized" and done.weight == 0 and done.scale_canary == "down"
    assert done.state.last_applied == done.state.last_promoted == "v1"


def test_a_full_promotion_steps_exactly_through_the_configured_weights():
    state, seen = STEADY, []
    for _ in range(20):
        step = run(POLICY, state, READY)
        if step.weight is not None:
            seen.append((step.state.phase, step.weight))
        state = step.state
        if state.phase == "Succeeded":
            break
    assert seen == [
        ("Progressing", 0),
        ("Progressing", 5),
        ("Progressing", 50),
        ("Progressing", 200),
        ("Progressing", 500),
        ("Finalising", 0),
        ("Succeeded", 0),
    ]
    assert state.last_promoted == "v2" and state.weight == 0


def test_going_back_to_the_promoted_revision_triggers_nothing():
    step = run(POLICY, STEADY, replace(READY, revision="v1"))
    assert step.state == STEADY and step.weight is None and step.event is None


def test_failed_checks_reach_the_threshold_and_roll_back():
    state = replace(STEADY, phase="Progressing", weight=50, last_applied="v2", transition_at=90)
    first = run(POLICY, state, READY, {"analysis": False})
    assert first.state.failed_checks == 1 and first.weight is None and first.event == "Warning"
    second = run(POLICY, first.state, READY, {"analysis": False})
    rollback = run(POLICY, second.state, READY)
    assert rollback.state.phase == "Failed" and rollback.weight == 0 and rollback.scale_canary == "down"
    # A failed revision stays failed until a new one comes.
    assert run(POLICY, rollback.state, READY).weight is None


def test_no_weight_to_an_unhealthy_canary_and_the_deadline_counts_from_unavailability():
    # Progressing for long (transition_at 0): a readiness blip does not roll back at once.
    state = replace(STEADY, phase="Progressing", weight=0, last_applied="v2", transition_at=0)
    held = run(POLICY, state, replace(READY, canary_healthy=False, now=900.0))
    assert held.weight is None and held.state == replace(state, unavailable_since=900.0)
    still = run(POLICY, held.state, replace(READY, canary_healthy=False, now=950.0))
    assert still.state.phase == "Progressing" and still.state.unavailable_since == 900.0
    late = run(POLICY, held.state, replace(READY, canary_healthy=False, now=961.0))
    assert late.state.phase == "Failed" and "deadline" in late.message and "61s" in late.message
    # Ready again: the clock resets.
    back = run(POLICY, held.state, replace(READY, now=955.0))
    assert back.state.unavailable_since == 0.0


def test_new_revision_mid_analysis_restarts_at_zero():
    state = replace(STEADY, phase="Progressing", weight=200, failed_checks=1, last_applied="v2")
    step = run(POLICY, state, replace(READY, revision="v3"))
    assert step.weight == 0 and step.state.failed_checks == 0 and step.state.last_applied == "v3"


def test_gates_hold_and_ask_only_for_defined_hooks():
    policy = replace(POLICY, hooks=frozenset({"confirm-rollout", "confirm-promotion"}))
    assert decide(policy, STEADY, READY) == Ask(("confirm-rollout",))
    waiting = run(policy, STEADY, READY, {"confirm-rollout": False})
    assert waiting.state.phase == "Waiting" and waiting.weight is None
    at_max = replace(STEADY, phase="Progressing", weight=500, last_applied="v2")
    held = run(policy, at_max, READY, {"confirm-promotion": False})
    assert held.state.phase == "WaitingPromotion" and not held.promote
    go = run(policy, held.state, READY)
    assert go.state.phase == "Promoting" and go.promote


def test_suspend_skip_analysis_and_stepped_promotion():
    assert run(replace(POLICY, suspend=True), STEADY, READY).state == STEADY
    started = run(replace(POLICY, skip_analysis=True), STEADY, READY).state
    assert run(replace(POLICY, skip_analysis=True), started, READY).state.phase == "Promoting"
    policy = replace(POLICY, step_promotion=200)
    promoting = replace(STEADY, phase="Promoting", weight=500, last_applied="v2")
    weights = []
    state = promoting
    while state.phase != "Succeeded":
        step = run(policy, state, READY)
        weights.append(step.weight)
        state = step.state
    assert weights == [300, 100, 0, 0]


def test_iterations_run_the_analysis_at_weight_zero_then_promote():
    policy = replace(POLICY, iterations=2)
    state = replace(STEADY, phase="Progressing", last_applied="v2")
    for expected in (1, 2):
        state = run(policy, state, READY).state
        assert state.iterations == expected and state.weight == 0
    # Blue/green (Flagger's runBlueGreen): all traffic to the canary, one more analysis, then the copy.
    switch = run(policy, state, READY)
    assert switch.state.phase == "Progressing" and switch.weight == 1000 and not switch.promote
    failing = run(policy, switch.state, READY, {"analysis": False})
    assert failing.state.phase == "Progressing" and failing.state.failed_checks == 1 and not failing.promote
    promote = run(policy, switch.state, READY)
    assert promote.state.phase == "Promoting" and promote.promote and promote.state.weight == 1000


def test_steady_state_does_not_read_health():
    """needs_health() lets the shell skip DescribeTargetHealth; decide() must not depend on it then."""
    from awsctl.planning.rollout import needs_health

    assert not needs_health(POLICY, STEADY, "v1")
    unhealthy = replace(READY, revision="v1", primary_healthy=False, canary_healthy=False)
    assert run(POLICY, STEADY, unhealthy) == run(POLICY, STEADY, replace(READY, revision="v1"))
    assert needs_health(POLICY, STEADY, "v2")
    assert needs_health(POLICY, replace(STEADY, phase="Progressing"), "v1")


@pytest.mark.parametrize(
    ("phase", "revision", "spec_changed", "max_age"),
    [
        ("Initialized", "v1", False, 3600),  # at rest: the route is read once per drift period
        ("Succeeded", "v1", False, 3600),
        ("Failed", "v1", False, 3600),
        ("Succeeded", "v2", False, 2),  # a new revision: every interval from its first tick
        ("Succeeded", "v1", True, 2),  # a spec change is looked at now
        ("Progressing", "v1", False, 2),
        ("WaitingPromotion", "v1", False, 2),
        ("Promoting", "v1", False, 2),
    ],
)
def test_a_route_at_rest_is_read_once_per_drift_period(phase, revision, spec_changed, max_age):
    from awsctl.planning.rollout import route_max_age

    assert route_max_age(replace(STEADY, phase=phase), revision, spec_changed, 2, 3600) == max_age
    assert route_max_age(replace(STEADY, phase=phase), revision, spec_changed, 7200, 3600) == 7200  # never shorter


def test_no_metric_data_holds_then_counts_as_failed_past_the_tolerance():
    state = replace(STEADY, phase="Progressing", weight=50, last_applied="v2")
    silent = replace(READY, details={"analysis": "request-success-rate: no requests"})
    held = run(POLICY, state, silent, {"analysis": None})
    assert held.state == replace(state, no_data=1) and held.weight is None and held.reason == "AnalysisHeld"
    assert "no requests" in held.message and "no data 1/2" in held.message
    again = run(POLICY, held.state, silent, {"analysis": None})
    assert again.state.failed_checks == 0 and again.state.no_data == 2
    failed = run(POLICY, again.state, silent, {"analysis": None})
    assert failed.state.failed_checks == 1 and "no data for 3 checks in a row" in failed.message
    data = run(POLICY, failed.state, READY)  # data again: the count starts over
    assert data.state.no_data == 0 and data.weight == 200


def test_waiting_for_promotion_keeps_analysing():
    policy = replace(POLICY, hooks=frozenset({"confirm-promotion"}))
    waiting = replace(STEADY, phase="WaitingPromotion", weight=500, last_applied="v2")
    failed = run(
        policy, waiting, replace(READY, details={"analysis": "5xx"}), {"analysis": False, "confirm-promotion": False}
    )
    assert failed.state.failed_checks == 1 and failed.state.phase == "WaitingPromotion" and not failed.promote
    second = run(policy, failed.state, READY, {"analysis": False, "confirm-promotion": False})
    rolled = run(policy, second.state, READY, {"confirm-promotion": False})
    assert second.state.failed_checks == 2 and rolled.state.phase == "Failed" and rolled.weight == 0


def test_bake_at_full_weight_then_promote_and_a_failure_rolls_back_at_once():
    policy = replace(POLICY, bake_weight=1000, bake_seconds=60.0)
    at_max = replace(STEADY, phase="Progressing", weight=500, last_applied="v2")
    baking = run(policy, at_max, READY)
    assert baking.state.phase == "Baking" and baking.weight == 1000 and not baking.promote
    assert baking.state.transition_at == 100.0
    still = run(policy, baking.state, replace(READY, now=130.0))
    assert still.state.phase == "Baking" and still.weight is None and "30s left" in still.message
    done = run(policy, baking.state, replace(READY, now=161.0))
    assert done.state.phase == "Promoting" and done.promote and done.weight is None  # canary keeps the traffic
    # The primary's new pods must be healthy in AWS before any weight goes back to it.
    waiting = run(policy, done.state, replace(READY, now=170.0, primary_healthy=False))
    assert waiting.state.phase == "Promoting" and waiting.weight is None
    finalising = run(policy, done.state, replace(READY, now=180.0))
    assert finalising.state.phase == "Finalising" and finalising.weight == 0
    # One failed check during the bake: the weight goes back to the primary in one write.
    failed = run(
        policy,
        baking.state,
        replace(READY, now=120.0, details={"analysis": "alarm web-5xx is ALARM"}),
        {"analysis": False},
    )
    assert failed.state.phase == "Failed" and failed.weight == 0 and "bake failed: alarm web-5xx" in failed.message


def test_a_wait_on_aws_health_names_the_groups_and_their_states():
    from awsctl.planning.rollout import Observed, Policy, RolloutState, decide

    ob = Observed(
        revision="r1",
        now=10.0,
        primary_ready=True,
        primary_revision="v2",
        canary_ready=True,
        primary_healthy=False,
        canary_healthy=False,
        details={"primary-targets": "web-primary: 1/3 healthy (2 initial)"},
    )
    step = decide(Policy(steps=(100,), max_weight=500, threshold=2), RolloutState(), ob)
    assert step.state.phase == Phase.INITIALIZING and step.weight is None
    assert step.message == "waiting for every primary target to be healthy in AWS: web-primary: 1/3 healthy (2 initial)"


def test_each_step_says_whether_the_ab_routes_exist():
    policy = replace(POLICY, ab_testing=True)
    analysing = replace(STEADY, phase="Progressing", weight=0, last_applied="v2", transition_at=90)
    step = decide(policy, analysing, READY)
    assert isinstance(step, Step) and step.state.phase == Phase.PROGRESSING and step.ab_routes
    unready = decide(policy, analysing, replace(READY, canary_healthy=False))
    assert isinstance(unready, Step) and not unready.ab_routes  # never towards an unhealthy canary
    assert not decide(POLICY, analysing, READY).ab_routes  # no analysis.match, no A/B routes


def test_a_rollbacks_reason_stays_while_the_failed_revision_does():
    failed = decide(POLICY, replace(STEADY, phase="Progressing", weight=50, last_applied="v2", failed_checks=2), READY)
    assert failed.state.phase == Phase.FAILED and failed.message.startswith("rolled back revision v2: 2 failed checks")
    later = decide(POLICY, failed.state, replace(READY, now=200.0))
    assert later.state == failed.state and later.message == "" and later.event is None  # status keeps the reason


# -- transitions: a revision reaches the primary only after its own analysis -----------------------------
PROMOTING = replace(STEADY, phase="Promoting", weight=500, last_applied="v2", transition_at=90)
FINALISING = replace(PROMOTING, phase="Finalising", weight=300)


def test_the_template_is_copied_once_at_the_transition_and_never_again():
    """Table: (state, observed) -> (phase, promote, weight). A v3 pushed while v2 promotes is never
    copied; v2's promotion completes with the canary taken to 0 at once, and v3 is analysed after."""
    v3 = replace(READY, revision="v3")
    rows = [
        # the primary rolls v2 out: wait, no second copy
        (PROMOTING, replace(READY, primary_ready=False), "Promoting", False, None),
        # v3 arrives while the primary still rolls v2 out: wait, copy nothing
        (PROMOTING, replace(v3, primary_ready=False), "Promoting", False, None),
        # v2 is rolled out and healthy, v3 is in the target: traffic back to the primary at once
        (PROMOTING, v3, "Finalising", False, 0),
        # the same in Finalising, where stepWeightPromotion would step
        (FINALISING, v3, "Finalising", False, 0),
        # the copy did not land, the target still runs v2: copy v2 again
        (PROMOTING, replace(READY, primary_revision="v1"), "Promoting", True, None),
        # the copy did not land and the target moved on: nothing analysed to copy, roll back
        (PROMOTING, replace(v3, primary_revision="v1"), "Failed", False, 0),
    ]
    policy = replace(POLICY, step_promotion=100)
    for state, observed, phase, promote, weight in rows:
        step = run(policy, state, observed)
        assert (step.state.phase, step.promote, step.weight) == (phase, promote, weight), (state.phase, observed)
        assert step.state.last_applied == "v2"
    done = run(policy, replace(FINALISING, weight=0), v3)
    assert done.state.phase == "Succeeded" and done.state.last_promoted == "v2"
    after = run(policy, done.state, v3)
    assert after.state.phase == "Progressing" and after.state.last_applied == "v3" and after.weight == 0


def test_a_promotion_copies_exactly_once_per_revision():
    state, copies = replace(STEADY, phase="Progressing", last_applied="v2"), 0
    primary = "v1"
    for _ in range(20):
        step = run(POLICY, state, replace(READY, primary_revision=primary))
        if step.promote:
            copies += 1
            primary = step.state.last_applied
        state = step.state
        if state.phase == "Succeeded":
            break
    assert state.phase == "Succeeded" and copies == 1


def test_a_template_change_during_initializing_is_analysed_not_promoted():
    init = run(POLICY, RolloutState(), replace(READY, revision="v2", primary_revision="v1"))
    assert init.state.phase == "Initialized" and init.state.last_promoted == "v1" and not init.promote
    nxt = run(POLICY, init.state, replace(READY, revision="v2", primary_revision="v1"))
    assert nxt.state.phase == "Progressing" and nxt.state.last_applied == "v2" and nxt.scale_canary == "up"


def test_awsctl_promote_at_weight_zero_needs_this_ticks_analysis():
    from awsctl.planning.commands import PROMOTE

    at_zero = replace(STEADY, phase="Progressing", last_applied="v2")
    asked = replace(READY, commands=frozenset({PROMOTE}))
    rows = [
        ({"analysis": True}, "Promoting", None),  # passed: promote
        ({"analysis": False}, "Progressing", None),  # failed: a failed check, no promotion
        ({"analysis": None}, "Progressing", 5),  # no data at weight 0: the first step, the promote waits
    ]
    for answers, phase, weight in rows:
        step = run(POLICY, at_zero, asked, answers)
        assert (step.state.phase, step.weight) == (phase, weight), answers
        assert step.promote == (phase == "Promoting")
    failed = run(POLICY, at_zero, asked, {"analysis": False})
    assert failed.state.failed_checks == 1 and not failed.commands


def test_a_refused_tick_holds_then_rolls_back_on_abort_or_past_the_deadline():
    """Table: a tick refused before decide() (spec, backend, AWS) never freezes a canary in flight."""
    from awsctl.planning.commands import ABORT
    from awsctl.planning.rollout import when_refused

    at_50 = replace(STEADY, phase="WaitingPromotion", weight=500, last_applied="v2")
    rows = [
        # (state, seconds refused, commands, suspended) -> phase after (None: hold)
        (at_50, 5, frozenset(), False, None),  # within the deadline: hold the verified weight
        (at_50, 5, frozenset({ABORT}), False, "Failed"),  # abort works at once
        (at_50, 61, frozenset(), False, "Failed"),  # past the deadline (60 s): roll back
        (at_50, 61, frozenset(), True, None),  # suspended: frozen on purpose
        (at_50, 61, frozenset({ABORT}), True, "Failed"),  # abort works even then
        (replace(at_50, phase="Promoting"), 61, frozenset(), False, "Failed"),
        (replace(at_50, phase="Baking", weight=1000), 1, frozenset({ABORT}), False, "Failed"),
        (STEADY, 600, frozenset({ABORT}), False, None),  # nothing in flight: nothing to take back
        (replace(STEADY, phase="Failed"), 600, frozenset(), False, None),
    ]
    for state, refused_for, commands, suspended, phase in rows:
        step = when_refused(state, 1000.0, 1000.0 - refused_for, commands, 60.0, "spec.x: bad", suspended)
        assert (step.state.phase if step else None) == phase, (state.phase, refused_for, commands, suspended)
        if step is not None:
            assert step.weight == 0 and step.state.weight == 0 and step.event == "Warning"
            assert "spec.x: bad" in step.message and step.commands == (commands & {ABORT})


def test_rollback_hooks_are_asked_in_waiting_too_and_one_is_enough():
    policy = replace(POLICY, hooks=frozenset({"rollback", "confirm-rollout"}))
    waiting = replace(STEADY, phase="Waiting")
    held = run(policy, waiting, READY, {"rollback": False, "confirm-rollout": False})
    assert held.state.phase == "Waiting" and held.weight is None
    rolled = run(policy, waiting, READY, {"rollback": True})
    assert rolled.state.phase == "Failed" and rolled.state.last_applied == "v2" and rolled.weight == 0
    # Failed for v2 stays failed: v2 is not rolled out again on the next tick.
    assert run(policy, rolled.state, READY).state.phase == "Failed"


def test_any_passing_rollback_hook_asks_for_the_rollback():
    from awsctl.analysis.webhooks import HookResult, any_passed

    assert any_passed([HookResult("a", False, "a: 500"), HookResult("b", True, "")]) == (
        True,
        "rollback webhook b asked for it",
    )
    assert any_passed([HookResult("a", False, "a: 500")]) == (False, "")
    assert any_passed([]) == (False, "")


def test_no_data_while_only_another_revisions_periods_have_data_is_not_yet_silence():
    at_50 = replace(STEADY, phase="Progressing", weight=500, last_applied="v2")
    pending = replace(READY, pending=frozenset({"analysis"}), details={"analysis": "no period since 05:01:30"})
    held = run(POLICY, at_50, pending, {"analysis": None})
    assert held.state.no_data == 0 and held.weight is None and held.event is None
    assert held.message == "holding at 50% (not counted as no data): no period since 05:01:30"
    counted = run(POLICY, at_50, READY, {"analysis": None})
    assert counted.state.no_data == 1  # past the window, silence counts as before


@pytest.mark.parametrize(
    ("due", "now", "go"),
    [(None, 100.0, True), (130.0, 100.0, False), (130.0, 129.6, True), (130.0, 140.0, True)],
)
def test_what_a_route_change_left_behind_goes_only_after_the_allowance(due, now, go):
    """The canary's pods, or your apex Service's pods in your own group, stay until scaleDownAt: the load
    balancer's nodes may route by the old rule until then."""
    assert let_go(due, now) is go


def test_a_promotion_past_its_deadline_says_so_once_and_keeps_the_traffic_on_the_canary():
    """A primary that never becomes healthy left the Canary in Promoting with no word: past
    progressDeadlineSeconds from the transition it is a Warning (event, Promoted condition, alert)."""
    for observed in (replace(READY, primary_ready=False), replace(READY, primary_healthy=False)):
        before = run(POLICY, PROMOTING, replace(observed, now=PROMOTING.transition_at + 60))
        assert before.reason == "Promoting" and before.event is None
        late = run(POLICY, PROMOTING, replace(observed, now=PROMOTING.transition_at + 61))
        assert late.reason == "PromotionStalled" and late.event == "Warning"
        assert late.state == PROMOTING and late.weight is None  # the canary keeps the traffic
        assert "progress deadline (60s)" in late.message
        again = run(POLICY, late.state, replace(observed, now=PROMOTING.transition_at + 120))
        assert again.message == late.message  # one event: the reconciler posts a message once
    healthy = run(POLICY, PROMOTING, replace(READY, now=PROMOTING.transition_at + 600))
    assert healthy.state.phase == "Finalising"  # late, but healthy: the promotion goes on


@pytest.mark.parametrize("phase", ["Progressing", "WaitingPromotion", "Baking"])
def test_a_weighted_canary_with_no_healthy_target_goes_back_to_zero_at_once(phase):
    """ALB fails open to a group whose targets are all unhealthy: holding the weight until the progress
    deadline sent the canary's share to broken targets. Now the weight goes back at once, verified."""
    carrying = replace(STEADY, phase=phase, weight=500, last_applied="v2", transition_at=90)
    void = replace(READY, canary_healthy=False, canary_void=True, details={"canary-void": "web-c: no healthy target"})
    step = run(replace(POLICY, bake_weight=1000, bake_seconds=60), carrying, void)
    assert step.state.phase == "Failed" and step.weight == 0 and step.scale_canary == "down"
    assert "web-c: no healthy target" in step.message and "fails open" in step.message
    at_zero = run(POLICY, replace(carrying, phase="Progressing", weight=0), void)
    assert at_zero.state.phase == "Progressing" and at_zero.weight is None  # no weight: it waits, as before


@pytest.mark.parametrize(
    ("quiet", "step", "since"),
    [
        (None, None, None),  # a first revision on new groups: every period is its own
        (100.0, None, 100.0),  # the revision's first weight not verified yet: since the groups went quiet
        (100.0, 160.0, 160.0),  # a step: only periods from its own verification on
        (200.0, 160.0, 200.0),  # rolled back since the last step: the quiet moment is later
    ],
)
def test_each_step_is_judged_on_periods_from_its_own_verification(quiet, step, since):
    assert evidence_since(quiet, step) == since
