"""terraform/: fmt, validate, and apply + destroy of examples/local against a moto server over HTTP.

This tier needs terraform and the offline hashicorp/aws mirror; without them it fails (never skips).
"""

import json
import urllib.parse

import pytest

from awsctl.demo.terraform import PLUGIN_MIRROR, SOURCE, Terraform, terraform_binary

pytestmark = pytest.mark.terraform


@pytest.fixture(scope="module")
def tools():
    assert terraform_binary(), "terraform is required for this tier (install it at /usr/local/bin/terraform)"
    assert PLUGIN_MIRROR.is_dir(), f"the hashicorp/aws provider mirror is required at {PLUGIN_MIRROR}"


def test_fmt_is_clean(tools, tmp_path):
    Terraform(tmp_path).run("fmt", "-check", "-recursive", "-diff", "-no-color", cwd=SOURCE)


@pytest.mark.parametrize("example", ["local", "eks"])
def test_examples_validate(tools, tmp_path, example):
    tf = Terraform(tmp_path, example)
    tf.init()
    assert "The configuration is valid" in tf.run("validate", "-no-color")


def test_local_example_applies_and_destroys_against_moto(tools, tmp_path, moto):
    tf = Terraform(tmp_path)
    tf.init()
    out = tf.apply(endpoint=moto.endpoint)
    elbv2, ec2, iam = moto.client("elbv2"), moto.client("ec2"), moto.client("iam")

    listener = elbv2.describe_listeners(ListenerArns=[out["listener_arn"]])["Listeners"][0]
    assert listener["Port"] == 80 and listener["DefaultActions"][0]["Type"] == "fixed-response"
    lb = elbv2.describe_load_balancers(LoadBalancerArns=[listener["LoadBalancerArn"]])["LoadBalancers"][0]
    assert lb["VpcId"] == out["vpc_id"] and lb["Type"] == "application" and len(lb["AvailabilityZones"]) == 2

    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [out["vpc_id"]]}])["SecurityGroups"]
    }
    alb_sg, pods_sg = groups["awsctl-demo-alb"], groups["awsctl-demo-pods"]
    assert lb["SecurityGroups"] == [alb_sg["GroupId"]]
    pod_rule = pods_sg["IpPermissions"][0]
    assert (pod_rule["FromPort"], pod_rule["ToPort"]) == (8080, 8080)
    assert pod_rule["UserIdGroupPairs"][0]["GroupId"] == alb_sg["GroupId"]  # only the ALB reaches the pods

    role = iam.get_role(RoleName="awsctl-demo-controller")["Role"]
    assert role["Arn"] == out["role_arn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(urllib.parse.unquote(trust)) if isinstance(trust, str) else trust
    conditions = json.dumps(trust["Statement"][0]["Condition"])
    assert "system:serviceaccount:awsctl-system:awsctl" in conditions and "sts.amazonaws.com" in conditions
    attached = iam.list_attached_role_policies(RoleName="awsctl-demo-controller")["AttachedPolicies"]
    policy = iam.get_policy(PolicyArn=attached[0]["PolicyArn"])["Policy"]
    document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    statements = {s["Sid"]: s for s in _document(document["PolicyVersion"]["Document"])["Statement"]}
    assert statements["ChangeOwnedTargetGroupsAndRules"]["Condition"]["StringEquals"] == {
        "aws:ResourceTag/awsctl.io/managed-by": "awsctl"
    }
    assert statements["Weights"]["Resource"] == [
        out["listener_arn"],
        out["listener_arn"].replace(":listener/", ":listener-rule/") + "/*",
    ]
    assert "*" not in json.dumps([s["Action"] for s in statements.values()])  # no wildcard actions

    tf.destroy(endpoint=moto.endpoint)
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"] == "awsctl-demo-controller"]


def _document(doc):
    return json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
