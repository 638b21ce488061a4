"""GetMetricData, paginated, as {query id: values}; the computation lives in analysis/metrics.py."""

from __future__ import annotations

import datetime

from awsctl.aws.clients import Clients

MAX_QUERIES = 500  # GetMetricData accepts at most 500 queries per call


class CloudWatch:
    def __init__(self, clients: Clients):
        self._clients = clients

    def metric_data(self, queries: list[dict], seconds: float) -> dict[str, list[float]]:
        end = datetime.datetime.now(datetime.timezone.utc)
        start = end - datetime.timedelta(seconds=seconds)
        out: dict[str, list[float]] = {}
        for i in range(0, len(queries), MAX_QUERIES):
            kwargs = {"MetricDataQueries": queries[i:i + MAX_QUERIES], "StartTime": start, "EndTime": end,
                      "ScanBy": "TimestampDescending"}
            while True:
                page = self._clients.get("cloudwatch").get_metric_data(**kwargs)
                for result in page["MetricDataResults"]:
                    out.setdefault(result["Id"], []).extend(result.get("Values") or [])
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return out
