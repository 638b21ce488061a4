"""The trimmed EC2 model the operator loads: generated from the installed botocore, and enough for
the one call awsctl makes with it."""

import boto3

from awsctl.aws import service_models


def test_the_committed_trimmed_models_match_the_installed_botocore():
    for path, text in service_models.generated().items():
        assert (service_models.HERE / path).read_text() == text, (
            f"run make lock, or python -m awsctl.aws.service_models ({path})"
        )


def test_the_operator_session_loads_the_trimmed_ec2_model_and_can_describe_vpcs():
    session = boto3.session.Session(
        botocore_session=service_models.session(),
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    ec2 = session.client("ec2")
    assert ec2.meta.service_model.operation_names == ["DescribeVpcs"]
    model = ec2.meta.service_model.operation_model("DescribeVpcs")
    assert "VpcIds" in model.input_shape.members and "Vpcs" in model.output_shape.members
    cidrs = model.output_shape.members["Vpcs"].member.members["CidrBlockAssociationSet"].member.members
    assert {"CidrBlock", "CidrBlockState"} <= set(cidrs)
