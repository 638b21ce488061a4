"""boto3 clients behind the process's API budget, with botocore's standard retries (the budget,
not botocore, adapts to throttling), a bounded pool, and an optional API-call counter.

Endpoint and region come from the standard variables (AWS_ENDPOINT_URL points boto3 at
moto); nothing here hard-codes them.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError

from awsctl.aws import service_models
from awsctl.aws.budget import Budget

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=30,
)


class CallCounter:
    """Counts AWS API calls by operation, through botocore's before-call event (benchmarks, tests)."""

    WRITE_PREFIXES = ("Register", "Deregister", "Create", "Delete", "Modify", "Set", "Add", "Remove", "Put")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()

    def hook(self, model, **_) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def attach(self, client) -> None:
        client.meta.events.register("before-call.*.*", self.hook)

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.calls)

    @classmethod
    def is_write(cls, operation: str) -> bool:
        return operation.startswith(cls.WRITE_PREFIXES)

    def writes(self) -> int:
        return sum(n for op, n in self.snapshot().items() if self.is_write(op))

    def reads(self) -> int:
        return sum(n for op, n in self.snapshot().items() if not self.is_write(op))


class Clients:
    """One session, one client per service, shared by all handler threads (boto3 clients are thread-safe)."""

    def __init__(
        self,
        counter: CallCounter | None = None,
        session: boto3.session.Session | None = None,
        budget: Budget | None = None,
    ):
        # The trimmed EC2 model (one operation) instead of botocore's largest: ~13 MiB less RSS.
        # botocore reads AWS_DEFAULT_REGION only; AWS_REGION (what deploy/ and most SDKs set) counts too.
        self._session = session or boto3.session.Session(
            botocore_session=service_models.session(), region_name=os.environ.get("AWS_REGION") or None
        )
        self._lock = threading.Lock()
        self._clients: dict[str, object] = {}
        self.counter = counter
        self.budget = budget if budget is not None else Budget()
        self.fence: Callable[[str], None] | None = None  # called before every AWS write; raises to refuse it

    def get(self, service: str):
        with self._lock:
            if service not in self._clients:
                client = self._session.client(service, config=_CONFIG)
                if self.counter:
                    self.counter.attach(client)
                self.budget.attach(client)
                # Per HTTP attempt, after the budget's wait for a token: a write that waited while the
                # replica was paused is refused then, not sent.
                client.meta.events.register(
                    f"before-send.{client.meta.service_model.service_id.hyphenize()}", self._fenced
                )
                self._clients[service] = client
            return self._clients[service]

    def _fenced(self, event_name: str, **_) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.fence is not None and CallCounter.is_write(operation):
            self.fence(operation)

    def whoami(self) -> dict:
        """STS GetCallerIdentity, tried twice at most: the operator's start-up check of credentials, region
        and endpoint (it needs no IAM permission), which must fail in seconds, not after ten back-offs.
        STS alone would work without a region (it has a global endpoint); ELBv2 would not."""
        if not self._session.region_name:
            raise NoRegionError()
        sts = self._session.client(
            "sts",
            config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=10),
        )
        return sts.get_caller_identity()

    @property
    def elbv2(self):
        return self.get("elbv2")

    @property
    def ec2(self):
        return self.get("ec2")
