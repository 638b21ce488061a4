"""awsctl promote | abort | retry as the state machine sees them: aimed at one revision, acted on once."""

from dataclasses import replace

from awsctl.planning import commands
from tests.unit.test_rollout import POLICY, READY, STEADY, run

PROGRESSING = replace(STEADY, phase="Progressing", weight=50, iterations=2, last_applied="v2", transition_at=90)


def asked(*verbs):
    return replace(READY, commands=frozenset(verbs))


def test_promote_skips_the_remaining_steps_once_this_ticks_analysis_passed():
    held = run(POLICY, PROGRESSING, asked(commands.PROMOTE), {"analysis": False})
    assert held.state.phase == "Progressing" and held.state.failed_checks == 1 and not held.commands
    step = run(POLICY, PROGRESSING, asked(commands.PROMOTE))
    assert step.state.phase == "Promoting" and step.promote and step.commands == {commands.PROMOTE}
    assert step.state.weight == 50  # the canary keeps its share until the primary runs the new revision


def test_promote_full_skips_the_analysis_too_but_never_promotes_an_unready_canary():
    full = run(POLICY, PROGRESSING, asked(commands.PROMOTE_FULL), {"analysis": False})
    assert full.state.phase == "Promoting" and full.commands == {commands.PROMOTE_FULL}
    waiting = run(POLICY, PROGRESSING, replace(asked(commands.PROMOTE_FULL), canary_ready=False))
    assert waiting.state.phase == "Progressing" and not waiting.commands


def test_abort_rolls_back_at_once_and_retry_restarts_the_failed_revision_at_zero():
    abort = run(POLICY, PROGRESSING, asked(commands.ABORT))
    assert abort.state.phase == "Failed" and abort.weight == 0 and abort.scale_canary == "down"
    assert abort.commands == {commands.ABORT} and "awsctl abort" in abort.message
    failed = abort.state
    assert run(POLICY, failed, READY).state == failed  # a failed revision stays failed until asked
    retry = run(POLICY, failed, asked(commands.RETRY))
    assert retry.state.phase == "Progressing" and retry.weight == 0 and retry.scale_canary == "up"
    assert retry.state.failed_checks == 0 and retry.state.iterations == 0 and retry.commands == {commands.RETRY}


def test_retry_is_only_for_the_failed_revision():
    failed = replace(PROGRESSING, phase="Failed", weight=0)
    newer = run(POLICY, failed, replace(asked(commands.RETRY), revision="v3"))
    assert newer.state.last_applied == "v3" and not newer.commands  # a new revision starts on its own


def test_pending_commands_are_aimed_at_one_revision_and_act_once():
    note = {"awsctl.io/promote": "v2 2026-11-23T02:00:00Z", "awsctl.io/abort": "v1 2026-11-23T01:00:00Z"}
    assert commands.pending(note, {}, "v2") == {commands.PROMOTE}
    handled = commands.handled_after(note, {}, frozenset({commands.PROMOTE}))
    assert handled == {"promote": "v2 2026-11-23T02:00:00Z"}
    assert commands.pending(note, handled, "v2") == frozenset()
    again = {**note, "awsctl.io/promote": "v2 2026-11-23T02:05:00Z"}  # asked once more: acts once more
    assert commands.pending(again, handled, "v2") == {commands.PROMOTE}


def test_the_cli_refuses_a_command_the_phase_cannot_take():
    assert commands.refusal(commands.PROMOTE, "Progressing", "web") is None
    assert "no rollout in progress to promote" in commands.refusal(commands.PROMOTE, "Succeeded", "web")
    assert "not Failed" in commands.refusal(commands.RETRY, "Progressing", "web")
    assert commands.refusal(commands.ABORT, "Baking", "web") is None


def test_suspend_wins_over_any_command():
    policy = replace(POLICY, suspend=True)
    step = run(policy, PROGRESSING, asked(commands.ABORT))
    assert step.state == PROGRESSING and not step.commands
