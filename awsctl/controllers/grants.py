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
        self._grants: tuple[float, list[api.Grant]] = (float("-inf"), [])
        self._labels: dict[str, tuple[float, dict[str, str]]] = {}

    def check(self, namespace: str, asks: plan.Asks) -> None:
        """Raises NotReady (reason NotGranted, the field that asks) for the first ask no grant allows."""
        refused = plan.refusal(self.grants(), namespace, self.labels(namespace), asks)
        if refused is not None:
            raise NotReady(refused.reason, refused.message, refused.field)

    def grants(self) -> list[api.Grant]:
        now = self.clock()
        with self._lock:
            read_at, grants = self._grants
            if now - read_at <= self.max_age:
                return grants
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
        with self._lock:
            self._grants = (now, grants)
        return grants

    def labels(self, namespace: str) -> dict[str, str]:
        now = self.clock()
        with self._lock:
            read_at, labels = self._labels.get(namespace, (float("-inf"), {}))
            if now - read_at <= self.max_age:
                return labels
        labels = self.kube.namespace_labels(namespace)
        with self._lock:
            self._labels[namespace] = (now, labels)
        return labels
