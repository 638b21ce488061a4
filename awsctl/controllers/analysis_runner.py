"""Answers the rollout planner's gates: webhooks of the asked type, and for the analysis gate the
rollout webhooks plus every CloudWatch metric check (I/O here, arithmetic in analysis/metrics.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from awsctl.analysis import metrics, webhooks
from awsctl.api import canary as api
from awsctl.aws.cloudwatch import CloudWatch
from awsctl.planning.rollout import ANALYSIS

log = logging.getLogger("awsctl.analysis")


@dataclass(frozen=True)
class Answer:
    ok: bool | None  # None: no data yet (metrics), hold the step
    detail: str
    metrics: list[dict] = field(default_factory=list)  # last value of each metric, for status


class AnalysisRunner:
    def __init__(self, cloudwatch: CloudWatch):
        self.cloudwatch = cloudwatch

    def answer(self, gate: str, spec: api.CanarySpec, payload: Mapping, canary_groups: Sequence[str]) -> Answer:
        hooks = spec.analysis.hooks("rollout" if gate == ANALYSIS else gate)
        hooks_ok, hooks_detail = webhooks.passed(webhooks.run_all(hooks, payload))
        if gate != ANALYSIS or not spec.analysis.metrics:
            return Answer(hooks_ok, hooks_detail)
        results = [self._metric(check, i, spec.load_balancer.listener_arn, canary_groups)
                   for i, check in enumerate(spec.analysis.metrics)]
        metrics_ok, metrics_detail = metrics.verdict(results)
        status = [r.to_status(c) for r, c in zip(results, spec.analysis.metrics)]
        if not hooks_ok:
            return Answer(False, "; ".join(filter(None, (hooks_detail, metrics_detail if metrics_ok is False else ""))),
                          status)
        return Answer(metrics_ok, metrics_detail, status)

    def _metric(self, check: metrics.MetricCheck, index: int, listener_arn: str,
                groups: Sequence[str]) -> metrics.MetricResult:
        queries = metrics.queries(check, index, groups, listener_arn)
        try:
            # The window is one period, which is the interval rounded up to a period CloudWatch allows.
            data = self.cloudwatch.metric_data(queries, metrics.period(check.interval_seconds))
        except Exception as err:  # noqa: BLE001 - an unreachable CloudWatch is "no data", never a pass
            log.warning("metric query failed", extra={"metric": check.name, "error": str(err)})
            return metrics.MetricResult(check.name, None, None, f"{check.name}: CloudWatch query failed: {err}")
        return metrics.evaluate(check, index, groups, data)
