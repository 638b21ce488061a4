"""The shipped IAM policy allows every AWS action the operator's code can call (read from the source, so a
new call without its permission fails here, not in a user's account), and nothing the code never calls."""

import ast
import re
from pathlib import Path

import boto3
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "terraform/modules/controller-iam/main.tf"
# The operator's code: `awsctl dev` and the demo drive moto (they create load balancers), not the account.
OPERATOR = [p for p in (ROOT / "awsctl").rglob("*.py") if not {"dev", "demo"} & set(p.relative_to(ROOT).parts)]
SERVICES = {"elbv2": "elasticloadbalancing", "ec2": "ec2", "cloudwatch": "cloudwatch"}
RECEIVERS = {"elb": "elbv2", "ec2": "ec2", "cloudwatch": "cloudwatch"}  # how the code names each client
FREE = {"sts:GetCallerIdentity"}  # needs no permission (the start-up check of credentials)


def _operations() -> dict[str, dict[str, str]]:
    """{service: {python method name: API operation name}} from botocore's own models."""
    out = {}
    for service in SERVICES:
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        out[service] = {xform_name(op): op for op in client.meta.service_model.operation_names}
    return out


def _service_of(receiver: str, method: str, operations: dict[str, dict[str, str]]) -> str:
    named = [service for key, service in RECEIVERS.items() if key in receiver.lower()]
    if named:
        return named[0]
    owners = [service for service, ops in operations.items() if method in ops]
    assert len(owners) == 1, f"{method} on {receiver!r}: name the client after its service ({', '.join(owners)})"
    return owners[0]


def called_actions() -> dict[str, set[str]]:
    """IAM action -> the files that call it: every client method call and every paginator asked for."""
    operations = _operations()
    methods = set().union(*operations.values())
    found: dict[str, set[str]] = {}
    for path in OPERATOR:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            method = node.func.attr
            if method in ("get_paginator", "get_waiter") and node.args and isinstance(node.args[0], ast.Constant):
                method = node.args[0].value
            if method not in methods or not any(k in receiver.lower() for k in (*RECEIVERS, "client", "paginator")):
                continue
            service = _service_of(receiver, method, operations)
            found.setdefault(f"{SERVICES[service]}:{operations[service][method]}", set()).add(path.name)
    return found


def allowed_actions() -> set[str]:
    """The actions of every statement (not the condition keys, which are spelled the same way)."""
    lists = re.findall(r"\bactions\s*=\s*\[(.*?)\]", POLICY.read_text(), re.DOTALL)
    return {a for block in lists for a in re.findall(r'"((?:elasticloadbalancing|ec2|cloudwatch):[A-Za-z]+)"', block)}


def test_the_policy_allows_every_action_the_operator_calls():
    called = called_actions()
    assert "elasticloadbalancing:ModifyRule" in called and "cloudwatch:DescribeAlarms" in called  # the scan works
    missing = {action: sorted(files) for action, files in called.items() if action not in allowed_actions() | FREE}
    assert not missing, f"the IAM policy lacks {missing}"


def test_the_policy_allows_nothing_the_operator_never_calls():
    # AddTags is asked for by CreateTargetGroup and CreateRule with Tags (AWS authorizes it on creation).
    unused = allowed_actions() - set(called_actions()) - {"elasticloadbalancing:AddTags"}
    assert not unused, f"the IAM policy allows what awsctl never calls: {sorted(unused)}"
