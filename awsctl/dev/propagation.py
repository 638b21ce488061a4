"""How late a real Application Load Balancer applies what its API has already answered: the settings.

An ALB is several load-balancer nodes (at least one per enabled Availability Zone). The API shows a
change when the call returns; each node applies it later, at its own pace. The local data plane
(`awsctl.dev.dataplane`) lands every request on one node and lets that node route by what it has
applied so far:

- **Rule and default-action changes.** AWS, "Edit a listener rule": "Rule updates do not take effect
  immediately, so requests could be routed using the previous rule configuration for a short time
  after you update a rule." AWS gives no figure. Default: the nodes apply a change 2 to 10 s late
  (assumed, the unkind side of "a short time"); harsh: 5 to 60 s.
- **Registrations and deregistrations.** A node keeps sending new requests to a deregistered target
  until it has applied the deregistration, and only then drains it. Measured by users:
  aws-load-balancer-controller#1064 (a 5 s preStop sleep was not enough, 25 s was), #2106 (40 s: rare
  502s; 70 s: none), #2366 (deregistration "consistently took 2 minutes", NLB in IP mode); the EKS
  best-practices guide advises a preStop sleep of up to 180 s. Default: 5 to 25 s (#1064's
  bracket); harsh: 30 to 120 s (#2366). A registration reaches each node with the same delay.
- **CloudWatch.** ALB "measures and sends its metrics in 60-second intervals"; how long after a
  minute its datapoints can be read AWS does not say. Default: a minute's datapoints appear 60 s
  after it ends (assumed, commonly observed as one to two minutes); harsh: 150 s.

The delays of the nodes are spread evenly over the range, so that the slowest node always has the
top of it and a run is repeatable. `AWSCTL_DEV_PROPAGATION` = `default` | `harsh` | `off` chooses;
`off` (every node at once, metrics a second after the minute) is for debugging only, never for a
story to pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SWITCH = "AWSCTL_DEV_PROPAGATION"
MIN_NODES = 2  # an ALB needs subnets in at least two Availability Zones


@dataclass(frozen=True)
class Propagation:
    name: str
    rule_seconds: tuple[float, float]  # (fastest node, slowest node)
    target_seconds: tuple[float, float]
    metrics_lag_seconds: float  # after a 60 s period ends, until its datapoints can be read

    def nodes(self, zones: int) -> int:
        return max(MIN_NODES, zones)

    def rule_delay(self, node: int, nodes: int) -> float:
        return _spread(self.rule_seconds, node, nodes)

    def target_delay(self, node: int, nodes: int) -> float:
        return _spread(self.target_seconds, node, nodes)


def _spread(bounds: tuple[float, float], node: int, nodes: int) -> float:
    low, high = bounds
    return low if nodes <= 1 else low + (high - low) * node / (nodes - 1)


SETTINGS = {
    "default": Propagation("default", (2.0, 10.0), (5.0, 25.0), 60.0),
    "harsh": Propagation("harsh", (5.0, 60.0), (30.0, 120.0), 150.0),
    "off": Propagation("off", (0.0, 0.0), (0.0, 0.0), 1.0),
}
DEFAULT = SETTINGS["default"]


def from_env(value: str | None = None) -> Propagation:
    """The setting `AWSCTL_DEV_PROPAGATION` names; an unknown name is an error, never silently kind."""
    name = (value if value is not None else os.environ.get(SWITCH, "default")).strip().lower() or "default"
    if name not in SETTINGS:
        raise ValueError(f"{SWITCH}={name!r}: expected one of {', '.join(SETTINGS)}")
    return SETTINGS[name]
