"""The Kubernetes objects a Canary generates, as plain dicts: primary Deployment, Services, child bindings.

Seed 000: a generated Service is headless exactly when the user's Service is headless;
`clusterIP: None` is kept, never blanked. Ordinary Services leave clusterIP out so the API
server assigns one, as before.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from awsctl.api import GROUP, VERSION
from awsctl.planning import naming
from awsctl.planning.naming import canary_name, primary_name

CANARY_LABEL = "awsctl.io/canary"
ROLE_LABEL = "awsctl.io/role"


def template_hash(deployment: Mapping[str, Any]) -> str:
    """A new revision is a new pod template; replicas and metadata changes are not."""
    template = (deployment.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def owner_reference(canary: Mapping[str, Any]) -> dict[str, Any]:
    meta = canary["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Canary",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Mapping[str, Any] | None, canary_uid: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("uid") == canary_uid for r in refs)


def spec_changed(body: Mapping[str, Any]) -> bool:
    """The spec changed since status last recorded it (a tick that did not finish counts as changed)."""
    return bool(body["metadata"].get("generation") != (body.get("status") or {}).get("observedGeneration"))


def selector_of(deployment: Mapping[str, Any]) -> dict[str, str]:
    return dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def primary_selector(selector: Mapping[str, str]) -> dict[str, str]:
    """Flagger's rewrite: every selector value gets `-primary`, so primary and canary pods never overlap."""
    return {k: primary_name(v) for k, v in selector.items()}


def primary_template(target: Mapping[str, Any]) -> dict[str, Any]:
    """The target's pod template with its selector labels rewritten for the primary."""
    template = copy.deepcopy((target.get("spec") or {}).get("template") or {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels.update(primary_selector(selector_of(target)))
    return template


def primary_deployment(
    target: Mapping[str, Any],
    canary: Mapping[str, Any],
    replicas: int,
    readiness_gate: str | None = None,
    termination_delay: int = 0,
) -> dict[str, Any]:
    spec = copy.deepcopy(target.get("spec") or {})
    spec.pop("paused", None)
    spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": primary_selector(selector_of(target))}
    spec["template"] = primary_template(target)
    if readiness_gate:  # the pod is Ready only once its ALB target is healthy (its binding sets the gate)
        pod = spec["template"].setdefault("spec", {})
        gates = [g for g in pod.get("readinessGates") or () if g.get("conditionType") != readiness_gate]
        pod["readinessGates"] = [*gates, {"conditionType": readiness_gate}]
    if termination_delay:
        delay_termination(spec["template"].setdefault("spec", {}), termination_delay)
    meta = target.get("metadata") or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _primary_metadata(meta, canary, meta.get("labels") or {}),
        "spec": spec,
    }


DEFAULT_GRACE_SECONDS = 30  # Kubernetes' terminationGracePeriodSeconds when a pod says none


def delay_termination(pod: dict[str, Any], seconds: int) -> None:
    """A deleted pod keeps serving `seconds` before its containers get SIGTERM: a preStop `sleep` action on
    every container without a preStop hook of its own (a user's hook is kept), and the grace period grown by
    as much, so the app keeps its whole shutdown time. The load balancer stops sending it requests meanwhile."""
    added = False
    for container in pod.get("containers") or ():
        lifecycle = container.setdefault("lifecycle", {})
        if "preStop" not in lifecycle:
            lifecycle["preStop"] = {"sleep": {"seconds": seconds}}
            added = True
    if added:
        pod["terminationGracePeriodSeconds"] = (
            int(pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)) + seconds
        )


def termination_gap(
    target: Mapping[str, Any], termination_delay: int, deregistration_delay: int, propagation: int = 0
) -> tuple[str, str] | None:
    """Why deleting the target's (the canary's) pods can fail requests, as (reason, message), or None.

    awsctl changes nothing of the user's Deployment: it gives the primary its termination delay, and
    says what the canary's pods lack. A pod that stops at once when deleted can still be sent requests
    for a moment: the ALB stops only once the target is deregistered (502s, aws-load-balancer-controller
    #1719), and each of its nodes applies the deregistration later still (`propagation`, the Canary's
    loadBalancer.propagationSeconds): a preStop sleep shorter than that stops a pod that is still sent
    requests. A grace period shorter than the group's deregistration delay cuts requests in flight."""
    name = (target.get("metadata") or {}).get("name", "")
    pod = (((target.get("spec") or {}).get("template") or {}).get("spec")) or {}
    advice = max(termination_delay, propagation) or TERMINATION_DELAY_HINT
    bare = [c.get("name", "") for c in pod.get("containers") or () if "preStop" not in (c.get("lifecycle") or {})]
    if bare:
        return (
            "NoTerminationDelay",
            f"Deployment {name}: container(s) {', '.join(bare)} have no preStop hook, so a deleted canary pod stops "
            "at once while the load balancer may still send it requests (502s) or connections. Add "
            "lifecycle.preStop.sleep.seconds: "
            f"{advice} to them, as the primary has (spec.terminationDelaySeconds)",
        )
    short = [
        f"{c.get('name', '')} ({seconds} s)"
        for c in pod.get("containers") or ()
        if (seconds := _prestop_sleep((c.get("lifecycle") or {}).get("preStop") or {})) is not None
        and seconds < propagation
    ]
    if short:
        return (
            "TerminationDelayTooShort",
            f"Deployment {name}: the preStop sleep of {', '.join(short)} is shorter than "
            f"spec.loadBalancer.propagationSeconds ({propagation} s): the load balancer's nodes may still send a "
            f"deleted pod requests after it stops. Sleep at least {advice} s",
        )
    grace = int(pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
    if deregistration_delay > grace:
        return (
            "DrainLongerThanGrace",
            f"Deployment {name}: its pods' grace period ({grace} s) is shorter than the target groups' deregistration "
            f"delay ({deregistration_delay} s), so requests still in flight when a pod stops are cut. Lower "
            "spec.loadBalancer.targetGroup.deregistrationDelaySeconds or raise terminationGracePeriodSeconds",
        )
    return None


def _prestop_sleep(hook: Mapping[str, Any]) -> int | None:
    """How long a preStop hook sleeps, when it is a plain sleep (the sleep action, or exec `sleep N`,
    also through `sh -c`); None for any other hook, whose length cannot be known."""
    if "sleep" in hook:
        return int((hook.get("sleep") or {}).get("seconds") or 0)
    command = [str(part) for part in (hook.get("exec") or {}).get("command") or ()]
    words = command[-1].split() if len(command) >= 3 and command[1] == "-c" else command
    if len(words) == 2 and words[0].rsplit("/", 1)[-1] == "sleep" and words[1].isdigit():
        return int(words[1])
    return None


TERMINATION_DELAY_HINT = 30


def _primary_metadata(user: Mapping[str, Any], canary: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """A generated primary object's name, namespace, labels and owner (the Canary, so it goes with it)."""
    return {
        "name": primary_name(user["name"]),
        "namespace": user.get("namespace"),
        "labels": {**labels, CANARY_LABEL: canary["metadata"]["name"], ROLE_LABEL: "primary"},
        "ownerReferences": [owner_reference(canary)],
    }


def primary_autoscaler(user: Mapping[str, Any], canary: Mapping[str, Any], primary: str) -> dict[str, Any]:
    """The primary's HPA: the user's spec (bounds, metrics, behavior) aimed at the primary Deployment,
    as Flagger's autoscalerRef does; owned by the Canary, so it goes with it."""
    spec = copy.deepcopy(user.get("spec") or {})
    spec["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": primary}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _primary_metadata(user.get("metadata") or {}, canary, {}),
        "spec": spec,
    }


def ip_family(service: Mapping[str, Any] | None) -> str | None:
    """A Service's first IP family as a target group names it; None when the Service says none."""
    families = ((service or {}).get("spec") or {}).get("ipFamilies") or ()
    return {"IPv4": "ipv4", "IPv6": "ipv6"}.get(families[0]) if families else None


def scales(autoscaler: Mapping[str, Any], deployment: str) -> bool:
    ref = (autoscaler.get("spec") or {}).get("scaleTargetRef") or {}
    return ref.get("kind") == "Deployment" and ref.get("name") == deployment


def service_ports(user_service: Mapping[str, Any] | None, port: int, target_port: int | str) -> list[dict[str, Any]]:
    """The user's ports and targetPorts as they are (nodePorts dropped: they are per Service)."""
    ports = ((user_service or {}).get("spec") or {}).get("ports") or []
    if any(p.get("port") == port for p in ports):
        return [{k: v for k, v in p.items() if k != "nodePort"} for p in ports]
    return [{"name": "http", "port": port, "targetPort": target_port, "protocol": "TCP"}]


def service(
    name: str,
    canary: Mapping[str, Any],
    selector: Mapping[str, str],
    ports: list[dict[str, Any]],
    *,
    headless: bool,
    node_port: bool,
    role: str,
    user_service: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": dict(selector), "ports": copy.deepcopy(ports)}
    if headless:
        spec["clusterIP"] = "None"  # seed 000: never blanked for a headless source
    else:
        spec["type"] = "NodePort" if node_port else "ClusterIP"
    user_spec = (user_service or {}).get("spec") or {}
    for passthrough in ("sessionAffinity", "publishNotReadyAddresses"):
        if passthrough in user_spec:
            spec[passthrough] = user_spec[passthrough]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": canary["metadata"]["namespace"],
            "labels": {CANARY_LABEL: canary["metadata"]["name"], ROLE_LABEL: role},
            "ownerReferences": [owner_reference(canary)],
        },
        "spec": spec,
    }


def generated_services(
    canary: Mapping[str, Any],
    apex: str,
    target_selector: Mapping[str, str],
    ports: list[dict[str, Any]],
    *,
    headless: bool,
    node_port: bool,
    user_service: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """Primary and canary Services, plus the apex when the user has none of their own."""
    out = [
        service(
            primary_name(apex),
            canary,
            primary_selector(target_selector),
            ports,
            headless=headless,
            node_port=node_port,
            role="primary",
            user_service=user_service,
        ),
        service(
            canary_name(apex),
            canary,
            target_selector,
            ports,
            headless=headless,
            node_port=node_port,
            role="canary",
            user_service=user_service,
        ),
    ]
    if user_service is None:
        out.append(
            service(
                apex,
                canary,
                primary_selector(target_selector),
                ports,
                headless=headless,
                node_port=node_port,
                role="apex",
            )
        )
    return out


def child_binding(
    name: str,
    canary: Mapping[str, Any],
    role: str,
    service_name: str,
    port: int | str,
    target_group_arn: str,
    target_type: str,
    gate: str = "",
) -> dict[str, Any]:
    """`gate`: the binding whose readiness gate this one answers, when not its own name (the bindings
    made after a move to another load balancer answer the gate the primary's pods already carry)."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": canary["metadata"]["namespace"],
        "labels": {CANARY_LABEL: canary["metadata"]["name"], ROLE_LABEL: role},
        "ownerReferences": [owner_reference(canary)],
    }
    if gate and gate != name:
        metadata["annotations"] = {GATE_ANNOTATION: gate}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TargetGroupBinding",
        "metadata": metadata,
        "spec": {
            "serviceRef": {"name": service_name, "port": port},
            "targetGroupARN": target_group_arn,
            "targetType": target_type,
        },
    }


GATE_ANNOTATION = "awsctl.io/readiness-gate"


def gate_name(binding: Mapping[str, Any]) -> str:
    """The binding name whose readiness gate this binding answers: its annotation's, else its own."""
    meta = binding.get("metadata") or {}
    return (meta.get("annotations") or {}).get(GATE_ANNOTATION) or meta.get("name") or ""


def gate_of(binding: Mapping[str, Any]) -> str:
    """The pod condition type this binding sets True once the pod's target is healthy."""
    return naming.readiness_gate(gate_name(binding))
