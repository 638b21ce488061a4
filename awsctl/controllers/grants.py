"""Reads the TrafficGrants and the namespaces' labels (a few seconds' cache, shared by every Canary and
binding) and answers the planning module's question: what does this object ask for that is not granted?"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from awsctl.api import grant as api
from awsctl.api.schema import SpecError
from awsctl.controllers.errors import NotReady
from awsctl.kube.client import ApiError, Kube
from awsctl.planning import grants as plan

log = logging.getLogger("awsctl.grants")

MAX_AGE = 5.0  # seconds a read of the grants or of a namespace's labels is used: a revoked grant stops writes by then


class Grants:
    def __init__(self, kube: Kube, clock: Callable[[], float] = time.monotonic, max_age: float = MAX_AGE):
        self.kube = kube
        self.clock = clock
        self.max_age = max_age
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, ...], tuple[float, object]] = {}  # key -> (read at, what was read)

    def check(self, namespace: str, asks: plan.Asks) -> None:
        """Raises NotReady (reason NotGranted, the field that asks) for the first ask no grant allows."""
        refused = plan.refusal(self.grants(), namespace, self.labels(namespace), asks)
        if refused is not None:
            raise NotReady(refused.reason, refused.message, refused.field)

    def grants(self) -> list[api.Grant]:
        return self._fresh(("grants",), self._read_grants)  # type: ignore[return-value]

    def labels(self, namespace: str) -> dict[str, str]:
        return self._fresh(("labels", namespace), lambda: self.kube.namespace_labels(namespace))  # type: ignore[return-value]

    def _fresh(self, key: tuple[str, ...], read: Callable[[], object]) -> object:
        """`read()`, or what it gave at most `max_age` seconds ago."""
        now = self.clock()
        with self._lock:
            read_at, value = self._reads.get(key, (float("-inf"), None))
            if now - read_at <= self.max_age:
                return value
        value = read()
        with self._lock:
            self._reads[key] = (now, value)
        return value

    def _read_grants(self) -> list[api.Grant]:
        try:
            items = self.kube.list_custom(api.PLURAL, None)
        except ApiError as err:
            if err.status != 404:
                raise
            items = []  # the CRD is not installed: nothing is granted
        grants = []
        for item in items:
            name = item["metadata"]["name"]
            try:
                grants.append(api.Grant.parse(name, item.get("spec") or {}))
            except SpecError as err:  # the apiserver validates the schema; what it cannot check grants nothing
                log.warning(f"{api.KIND} {name} grants nothing: {err}", extra={"grant": name, "field": err.field})
        return grants
