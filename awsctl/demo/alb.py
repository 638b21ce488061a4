"""An ALB with one HTTP listener in the default VPC: what `awsctl demo`, the tests and the benchmarks
drive. Against moto it costs nothing; against AWS, use terraform/ instead."""

from __future__ import annotations


def create_alb(elbv2, ec2, name: str = "awsctl-demo") -> tuple[str, str]:
    """Returns (load balancer ARN, listener ARN); the listener answers 404 until a rule forwards."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets[:2], Type="application",
                                    Scheme="internet-facing")["LoadBalancers"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response",
                         "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain",
                                                 "MessageBody": "no route"}}],
    )["Listeners"][0]
    return lb["LoadBalancerArn"], listener["ListenerArn"]
