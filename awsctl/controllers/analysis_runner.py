"""Answers the rollout planner's gates: webhooks of the asked type, and for the analysis gate the
rollout webhooks, every CloudWatch metric check and every CloudWatch alarm (I/O here, arithmetic
in analysis/metrics.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from awsctl.analysis import metrics, webhooks
from awsctl.api import canary as api
from awsctl.api.canary import AlarmStatus, MetricStatus
from awsctl.aws.cloudwatch import CloudWatch
from awsctl.aws.errors import error_code
from awsctl.controllers.errors import NotReady
from awsctl.planning.naming import alarm_name
from awsctl.planning.rollout import ANALYSIS

log = logging.getLogger("awsctl.analysis")

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def denied(err: Exception, field: str) -> NotReady | None:
    """A CloudWatch call the operator's role may not make is a condition that names the action, never
    "no data": no data holds and then fails a good canary, and the fix is in IAM, not in the canary."""
    if not isinstance(err, ClientError) or error_code(err) not in DENIED:
        return None
    action = f"cloudwatch:{err.operation_name}"
    return NotReady(
        "AccessDenied",
        f"{field}: the operator's IAM role may not call {action} ({error_code(err)}): add {action} to its policy "
        "(terraform/modules/controller-iam has it)",
        field,
    )


@dataclass(frozen=True)
class Answer:
    ok: bool | None  # None: no data yet (metrics, alarms), hold the step
    detail: str
    metrics: list[MetricStatus] = field(default_factory=list)  # last value of each metric, for status
    alarms: list[AlarmStatus] = field(default_factory=list)  # each alarm's state, for status
    pending: bool = False  # no data only because no period after the anchor is published yet
    thin: str = ""  # the metrics whose counted period held too few requests to judge ("" when none)


class AnalysisRunner:
    def __init__(self, cloudwatch: CloudWatch):
        self.cloudwatch = cloudwatch

    def answer(
        self,
        gate: str,
        spec: api.CanarySpec,
        payload: Mapping,
        canary_groups: Sequence[str],
        primary_groups: Sequence[str] = (),
        anchor: float | None = None,
        now: float | None = None,
    ) -> Answer:
        """`anchor`: the last moment the canary's groups were verified without traffic before this revision
        took traffic; metric periods that start earlier do not count, and a metric whose data all predates
        the anchor is "not yet", not silence, within its pending window."""
        hooks = spec.analysis.hooks("rollout" if gate == ANALYSIS else gate)
        if gate == "rollback":  # Flagger: any rollback hook that passes asks for the rollback
            return Answer(*webhooks.any_passed(webhooks.run_all(hooks, payload)))
        hooks_ok, hooks_detail = webhooks.passed(webhooks.run_all(hooks, payload))
        if gate != ANALYSIS or not (spec.analysis.metrics or spec.analysis.alarms):
            return Answer(hooks_ok, hooks_detail)
        results = [
            self._metric(check, i, spec.load_balancer.listener_arn, canary_groups, primary_groups, anchor)
            for i, check in enumerate(spec.analysis.metrics)
        ]
        age = (now - anchor) if anchor is not None and now is not None else None
        pending = [
            r.cut and age is not None and age < metrics.pending_window(check)
            for r, check in zip(results, spec.analysis.metrics)
        ]
        status = [r.to_status(c) for r, c in zip(results, spec.analysis.metrics)]
        alarms, alarm_status = self._alarms(spec.analysis.alarms)
        checks_ok, checks_detail = metrics.verdict(results + alarms)
        if not hooks_ok:
            return Answer(
                False,
                "; ".join(filter(None, (hooks_detail, checks_detail if checks_ok is False else ""))),
                status,
                alarm_status,
            )
        # Every metric without data waits for its first period after the anchor, and no alarm lacks data.
        not_yet = (
            checks_ok is None
            and all(r.ok is not None or young for r, young in zip(results, pending))
            and all(a.ok is not None for a in alarms)
        )
        thin = "; ".join(r.thin for r in results if r.thin)
        return Answer(checks_ok, checks_detail, status, alarm_status, pending=not_yet, thin=thin)

    def _alarms(self, refs: Sequence[str]) -> tuple[list[metrics.MetricResult], list[AlarmStatus]]:
        """The alarms as checks, and {name, state} of each for status (UNKNOWN when unreadable)."""
        if not refs:
            return [], []
        names = [alarm_name(r) for r in refs]
        try:
            states = self.cloudwatch.alarm_states(list(refs))
        except Exception as err:  # noqa: BLE001 - an unreachable CloudWatch is "no data", never a pass
            if why := denied(err, "spec.analysis.alarms"):
                raise why from err
            log.warning("alarm query failed", extra={"alarms": names, "error": str(err)})
            return (
                [
                    metrics.MetricResult(f"alarm/{n}", None, None, f"alarm {n}: DescribeAlarms failed: {err}")
                    for n in names
                ],
                [{"name": n, "state": "UNKNOWN"} for n in names],
            )
        return (metrics.alarm_results(states, names), [{"name": n, "state": states.get(n, "MISSING")} for n in names])

    def _metric(
        self,
        check: metrics.MetricCheck,
        index: int,
        listener_arn: str,
        groups: Sequence[str],
        primary_groups: Sequence[str],
        anchor: float | None = None,
    ) -> metrics.MetricResult:
        queries = metrics.queries(check, index, groups, listener_arn)
        if check.relative is not None:  # the same query over the same window, for the primary
            queries += metrics.queries(check, index, primary_groups, listener_arn, side="p")
        try:
            data = self.cloudwatch.metric_data(queries, metrics.lookback(check))
        except Exception as err:  # noqa: BLE001 - an unreachable CloudWatch is "no data", never a pass
            if why := denied(err, f"spec.analysis.metrics[{index}]"):
                raise why from err
            log.warning("metric query failed", extra={"metric": check.name, "error": str(err)})
            return metrics.MetricResult(check.name, None, None, f"{check.name}: CloudWatch query failed: {err}")
        return metrics.evaluate(check, index, groups, data, primary_groups, anchor)
