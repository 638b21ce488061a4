"""`awsctl status`: what Kubernetes asked for next to what AWS actually has, at a glance.

Collecting (Kubernetes + AWS reads) and rendering (pure, 80 columns, snapshot-tested) are apart.
"""

from __future__ import annotations

import json
import sys
import time

from awsctl import routing
from awsctl.aws.clients import Clients
from awsctl.aws.targets import TargetGroups
from awsctl.explain import CliError
from awsctl.kube.client import Kube
from awsctl.status import bindings, canaries


def show(name: str | None, namespace: str | None, output: str, watch: bool = False, interval: float = 2.0) -> int:
    kube, clients = Kube(), Clients()
    groups, traffic = TargetGroups(clients), routing.select(clients)
    while True:
        report = {
            "canaries": canaries.collect(kube, groups, traffic, name, namespace),
            "bindings": bindings.collect(kube, groups, name, namespace),
        }
        if name and not report["canaries"] and not report["bindings"]:
            where = f'namespace "{namespace}"' if namespace else "any namespace"
            raise CliError(f'no canary or target group binding named "{name}" in {where}')
        if output == "json":
            text = json.dumps(report, indent=2)
        else:
            text = canaries.render(report["canaries"], time.time()) + "\n\n" + bindings.render(report["bindings"])
        if watch and output != "json":
            sys.stdout.write("\033[H\033[2J")  # clear, like `watch`
        print(text, flush=True)
        if not watch:
            return 0
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return 0
