"""An ALB with one HTTP listener (or an NLB with one TCP listener) in the default VPC: what `awsctl demo`,
the tests and the benchmarks drive. Against moto it costs nothing; against AWS, use terraform/ instead."""

from __future__ import annotations

import datetime

from awsctl.analysis.metrics import NAMESPACE, load_balancer_dimension, target_group_dimension


def _load_balancer(elbv2, ec2, name: str, kind: str) -> dict:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    return elbv2.create_load_balancer(Name=name, Subnets=subnets[:2], Type=kind, Scheme="internet-facing")[
        "LoadBalancers"
    ][0]


def create_nlb(elbv2, ec2, name: str, group: str, port: int = 80) -> tuple[str, str]:
    """Returns (load balancer ARN, listener ARN): a TCP listener forwarding to `group` (an NLB's listener
    must forward somewhere: it has no fixed response)."""
    lb = _load_balancer(elbv2, ec2, name, "network")
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="TCP",
        Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )["Listeners"][0]
    return lb["LoadBalancerArn"], listener["ListenerArn"]


def create_alb(elbv2, ec2, name: str = "awsctl-demo") -> tuple[str, str]:
    """Returns (load balancer ARN, listener ARN); the listener answers 404 until a rule forwards."""
    lb = _load_balancer(elbv2, ec2, name, "application")
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no route"},
            }
        ],
    )["Listeners"][0]
    return lb["LoadBalancerArn"], listener["ListenerArn"]


def record_requests(cloudwatch, listener_arn: str, target_group_arn: str, requests: float, errors: float) -> None:
    """Writes the datapoints an ALB would publish for one target group now (RequestCount,
    HTTPCode_Target_2XX_Count and HTTPCode_Target_5XX_Count, high resolution): for the test stories
    that seed CloudWatch rather than run traffic through the data plane (`awsctl.dev.dataplane`),
    which the demo does. As on ALB, a zero count is not published."""
    dims = [
        {"Name": "TargetGroup", "Value": target_group_dimension(target_group_arn)},
        {"Name": "LoadBalancer", "Value": load_balancer_dimension(listener_arn)},
    ]
    now = datetime.datetime.now(datetime.UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": dims,
            "Value": float(value),
            "Timestamp": now,
            "Unit": "Count",
            "StorageResolution": 1,
        }
        for name, value in (
            ("RequestCount", requests),
            ("HTTPCode_Target_2XX_Count", requests - errors),
            ("HTTPCode_Target_5XX_Count", errors),
        )
        if value
    ]
    if data:
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
