"""GetMetricData (through botocore's paginator) and DescribeAlarms; the arithmetic lives in
analysis/metrics.py."""

from __future__ import annotations

import datetime

from awsctl.analysis.metrics import series_of
from awsctl.aws.clients import Clients
from awsctl.planning.naming import alarm_name

MAX_QUERIES = 500  # GetMetricData accepts at most 500 queries per call
MAX_ALARMS = 100  # DescribeAlarms takes at most 100 names per call


class CloudWatch:
    def __init__(self, clients: Clients):
        self._clients = clients

    def metric_data(self, queries: list[dict], lookback_seconds: float) -> dict[str, list[tuple[str, float]]]:
        """{query id: [(timestamp, value)]}, newest first, over the last `lookback_seconds`."""
        end = datetime.datetime.now(datetime.UTC)
        # Periods start on the minute: CloudWatch rounds a recent StartTime down to it, so asking for the
        # rounded time gets the same periods from any server (a period's stamp is when it starts).
        start = (end - datetime.timedelta(seconds=lookback_seconds)).replace(second=0, microsecond=0)
        paginator = self._clients.get("cloudwatch").get_paginator("get_metric_data")
        pages = []
        for i in range(0, len(queries), MAX_QUERIES):
            pages.extend(
                paginator.paginate(
                    MetricDataQueries=queries[i : i + MAX_QUERIES],
                    StartTime=start,
                    EndTime=end,
                    ScanBy="TimestampDescending",
                )
            )
        return series_of(pages)

    def alarm_states(self, refs: list[str]) -> dict[str, str]:
        """{alarm name: OK | ALARM | INSUFFICIENT_DATA} for the alarms that exist."""
        names = [alarm_name(r) for r in refs]
        out: dict[str, str] = {}
        paginator = self._clients.get("cloudwatch").get_paginator("describe_alarms")
        for i in range(0, len(names), MAX_ALARMS):
            for page in paginator.paginate(
                AlarmNames=names[i : i + MAX_ALARMS], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            ):
                for kind in ("MetricAlarms", "CompositeAlarms"):
                    for alarm in page.get(kind) or ():
                        out[alarm["AlarmName"]] = alarm["StateValue"]
        return out
