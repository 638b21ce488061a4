"""The `awsctl` command (also `kubectl awsctl` as a kubectl plugin): run | demo | status | promote | abort |
pause | resume | retry | version | dev {up,down,env,listeners,load}."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from awsctl import __version__


def _prog() -> str:
    """`kubectl awsctl` when kubectl runs us as its plugin (kubectl-awsctl on PATH)."""
    return "kubectl awsctl" if os.path.basename(sys.argv[0]).startswith("kubectl-") else "awsctl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description="Canary releases on AWS ALBs from Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    run.add_argument(
        "--cluster-name",
        default=os.environ.get("AWSCTL_CLUSTER_NAME", ""),
        help="this cluster's name, unique in the AWS account (required; or AWSCTL_CLUSTER_NAME): it is in the "
        "awsctl.io/cluster tag and the name of every target group, so two clusters never adopt each other's",
    )
    run.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="kopf liveness endpoint URL ('' disables it)"
    )
    run.add_argument("--peering", default="", help="kopf peering name for HA; '' runs standalone")
    run.add_argument(
        "--peering-priority",
        type=int,
        default=None,
        help="this replica's kopf peering priority (default: random, so replicas never tie)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=int,
        default=10,
        help="seconds before a standby takes over from a silent active replica",
    )
    run.add_argument(
        "--resync-seconds",
        type=float,
        default=600.0,
        help="re-read every binding's Kubernetes inputs this often, in case a watch event was missed "
        "(no AWS call unless changed)",
    )
    run.add_argument(
        "--drift-seconds",
        type=float,
        default=3600.0,
        help="on average, a settled binding reads its target group this often (spread out) and "
        "re-registers targets removed by hand; a Canary at rest reads its listener rule this often",
    )
    run.add_argument("--binding-workers", type=int, default=16, help="threads reconciling bindings")
    run.add_argument(
        "--api-rate",
        action="append",
        default=[],
        metavar="BUCKET=BURST/PER_SECOND",
        help="API budget of one bucket (repeatable): elbv2-register (default 20/4), "
        "elbv2-describe (40/10), elbv2-modify (20/3), cloudwatch (50/20), ec2 (100/20)",
    )
    run.add_argument(
        "--readiness-webhook-port",
        type=int,
        default=0,
        help="serve the pod readiness-gate webhook on this port (0: off)",
    )
    run.add_argument(
        "--readiness-webhook-host",
        default="127.0.0.1",
        help="host the API server dials for the webhook, out of cluster",
    )
    run.add_argument(
        "--readiness-webhook-service",
        default="",
        help="NAMESPACE/NAME of the Service in front of the operator, in cluster",
    )
    run.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port at /metrics (0: off)"
    )
    run.add_argument(
        "--metrics-bind-address",
        default="0.0.0.0",
        help="the address /metrics listens on (127.0.0.1 behind kube-rbac-proxy; default: every interface)",
    )
    run.add_argument("--log-format", choices=["json", "text"], default="json")
    run.add_argument("-v", "--verbose", action="store_true")

    demo = sub.add_parser("demo", help="run the whole story locally (local control plane + moto)")
    demo.add_argument("--state-dir", type=Path, default=None)
    demo.add_argument("--keep", action="store_true", help="leave the environment running afterwards")

    status = sub.add_parser("status", help="show canaries (weights, health, metrics) and bindings")
    status.add_argument("name", nargs="?")
    status.add_argument("-n", "--namespace", default=None)
    status.add_argument("-o", "--output", choices=["table", "json"], default="table")
    status.add_argument("-w", "--watch", action="store_true", help="refresh every 2 seconds until Ctrl-C")

    for verb, text in (
        ("promote", "skip the remaining steps of the rollout in progress (--full: and the analysis)"),
        ("abort", "roll the rollout in progress back now"),
        ("pause", "freeze the rollout at its verified weight (spec.suspend)"),
        ("resume", "let a paused rollout go on"),
        ("retry", "restart the analysis of a failed revision"),
    ):
        cmd = sub.add_parser(verb, help=text, description=text)
        cmd.add_argument("name", help="the Canary")
        cmd.add_argument("-n", "--namespace", default=None, help="default: the kubeconfig context's namespace")
        if verb == "promote":
            cmd.add_argument("--full", action="store_true", help="skip the analysis too")
        if verb in ("promote", "abort", "retry"):
            cmd.add_argument(
                "--wait",
                type=float,
                default=0.0,
                metavar="SECONDS",
                help="follow the Canary until the operator carried the command out",
            )

    sub.add_parser("version", help="print the version")

    dev = sub.add_parser("dev", help="local control plane for tests and demos")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    for name, text in (
        ("up", "start etcd, apiserver, controllers, kwok and moto"),
        ("down", "stop everything `up` started"),
        ("env", "print the shell exports again"),
        ("listeners", "list where each listener's traffic goes (http:// for ALB, tcp:// for NLB)"),
        ("load", "send requests at a fixed rate to a listener URL and summarise the answers"),
    ):
        cmd = dev_sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", type=Path, default=None)
        if name == "load":
            cmd.add_argument("url", help="a listener URL (`awsctl dev listeners`), path included")
            cmd.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
            cmd.add_argument("--duration", type=float, default=30.0, metavar="SECONDS", help="default 30")
            cmd.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Every failure a user can cause is one line on stderr and exit 1, never a traceback."""
    from awsctl.explain import explain

    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - explained, or re-raised as the bug it is
        line = explain(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 1


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"awsctl {__version__}")
        return 0
    if args.command in ("dev", "demo"):
        from awsctl.dev import EXTRAS, missing_message, missing_packages

        missing = missing_packages(extras=EXTRAS[args.command])
        if missing:
            print(f"error: {missing_message(args.command, missing)}", file=sys.stderr)
            return 1
    if args.command == "dev":
        return _dev(args)
    if args.command == "run":
        if not args.cluster_name.strip():
            print(
                "error: --cluster-name is required (or AWSCTL_CLUSTER_NAME): a name unique in the AWS account, so "
                "that two clusters sharing one account never adopt each other's target groups and rules",
                file=sys.stderr,
            )
            return 2
        rates = _rates(args.api_rate)
        if isinstance(rates, str):
            print(f"error: --api-rate {rates}", file=sys.stderr)
            return 2
        _limit_malloc_arenas(argv)
        _without_kubernetes_client()
        from awsctl.controllers.operator import OperatorOptions, run
        from awsctl.controllers.readiness_gates import WebhookOptions

        return run(
            OperatorOptions(
                namespaces=tuple(args.namespace),
                cluster_name=args.cluster_name,
                liveness=args.liveness or None,
                peering=args.peering or None,
                peering_priority=args.peering_priority,
                peering_lifetime=args.peering_lifetime,
                resync_seconds=args.resync_seconds,
                drift_seconds=args.drift_seconds,
                binding_workers=args.binding_workers,
                rates=rates,
                readiness_webhook=WebhookOptions(
                    args.readiness_webhook_port, args.readiness_webhook_host, args.readiness_webhook_service or None
                )
                if args.readiness_webhook_port
                else None,
                metrics_port=args.metrics_port,
                metrics_host=args.metrics_bind_address,
                log_format=args.log_format,
                verbose=args.verbose,
            )
        )
    if args.command == "status":
        from awsctl.status import show

        return show(name=args.name, namespace=args.namespace, output=args.output, watch=args.watch)
    if args.command in ("promote", "abort", "pause", "resume", "retry"):
        return _control(args)
    if args.command == "demo":
        from awsctl.demo.story import run_demo

        return run_demo(state_dir=args.state_dir, keep=args.keep)
    return 2


def _control(args) -> int:
    from awsctl import control
    from awsctl.kube.client import Kube
    from awsctl.planning import commands

    kube = Kube()
    namespace = args.namespace or kube.rest.default_namespace
    if args.command in ("pause", "resume"):
        return control.suspend(kube, namespace, args.name, paused=args.command == "pause")
    verb = {
        "promote": commands.PROMOTE_FULL if getattr(args, "full", False) else commands.PROMOTE,
        "abort": commands.ABORT,
        "retry": commands.RETRY,
    }[args.command]
    return control.ask(kube, namespace, args.name, verb, wait=args.wait)


def _rates(values: list[str]):
    """`BUCKET=BURST/PER_SECOND` flags -> {bucket: Rate}, or the one-line reason they are wrong."""
    from awsctl.aws.budget import DEFAULT_RATES, parse_rate

    out = {}
    for value in values:
        bucket, _, rate = value.partition("=")
        if bucket not in DEFAULT_RATES:
            return f"{value}: unknown bucket {bucket!r} (one of {', '.join(DEFAULT_RATES)})"
        try:
            out[bucket] = parse_rate(rate)
        except ValueError as err:
            return str(err)
    return out


def _limit_malloc_arenas(argv: list[str] | None) -> None:
    """glibc gives each thread its own malloc arena, and freed memory stays in them: with 32 handler
    threads that is ~100 MiB of RSS for nothing. Two arenas keep the operator small; glibc reads the
    variable at start-up only, so the process re-executes itself once with it set."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"
    args = sys.argv[1:] if argv is None else argv
    os.execv(sys.executable, [sys.executable, "-m", "awsctl", *args])


def _without_kubernetes_client() -> None:
    """kopf imports the official Kubernetes client when it is installed (awsctl's dev tools use it),
    only to recognise its model objects; the operator passes dicts, and the import is a pydantic model
    for every Kubernetes kind (~20 MiB). Marking it absent makes kopf skip it, as where it is not
    installed."""
    if "kubernetes" not in sys.modules:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]


def _dev(args) -> int:
    from awsctl.dev.cluster import DevError, Environment, default_state_dir
    from awsctl.dev.tools import ToolsError

    env = Environment(args.state_dir or default_state_dir())
    try:
        if args.dev_command == "up":
            from awsctl.api import grant

            env.up()
            env.install_crds()
            env.grant("dev", grant.everything())  # a single-team cluster: every namespace may use everything
            print(env.export_lines())
        elif args.dev_command == "env":
            print(env.export_lines())
        elif args.dev_command == "listeners":
            rows = env.listeners()
            print(f"{'LISTENER':<40} URL")
            for row in rows:
                print(f"{row['listenerArn'].split(':listener/', 1)[-1]:<40} {row['url']}")
        elif args.dev_command == "load":
            from awsctl.dev.load import run

            if args.rate <= 0 or args.duration <= 0:
                print("error: --rate and --duration must be above 0", file=sys.stderr)
                return 1
            return run(args.url, args.rate, args.duration, output=args.output)
        else:
            env.down()
    except (DevError, ToolsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
