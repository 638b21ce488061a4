# Least privilege for awsctl. Everything awsctl creates carries awsctl.io/managed-by=awsctl, so
# creating needs that tag in the request and changing or deleting needs it on the resource. Two
# things cannot be scoped by tag, by design, and are scoped by ARN instead:
# - Register/DeregisterTargets: a TargetGroupBinding may name a group awsctl does not own.
# - ModifyListener/ModifyRule: a Canary without `rule` drives the listener's default action, and
#   a Canary may take over an existing rule (restored on deletion).
data "aws_partition" "current" {}

locals {
  managed   = "awsctl.io/managed-by"
  listeners = length(var.listener_arns) > 0 ? var.listener_arns : ["arn:${data.aws_partition.current.partition}:elasticloadbalancing:*:*:listener/app/*/*/*"]
  rules     = length(var.listener_arns) > 0 ? [for a in var.listener_arns : replace(a, ":listener/", ":listener-rule/")] : ["arn:${data.aws_partition.current.partition}:elasticloadbalancing:*:*:listener-rule/app/*/*/*"]
  rule_arns = [for a in local.rules : "${a}/*"]
  groups    = "arn:${data.aws_partition.current.partition}:elasticloadbalancing:*:*:targetgroup/*/*"
}

data "aws_iam_policy_document" "controller" {
  statement {
    sid = "Read"
    actions = [
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetHealth",
      "ec2:DescribeVpcs",
      "cloudwatch:GetMetricData",
      "cloudwatch:DescribeAlarms",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "CreateOwnedTargetGroupsAndRules"
    actions   = ["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:CreateRule"]
    resources = concat([local.groups], local.rule_arns, local.listeners)
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.managed}"
      values   = ["awsctl"]
    }
  }

  statement {
    sid       = "TagOnlyWhileCreating"
    actions   = ["elasticloadbalancing:AddTags"]
    resources = concat([local.groups], local.rule_arns)
    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateTargetGroup", "CreateRule"]
    }
  }

  statement {
    sid = "ChangeOwnedTargetGroupsAndRules"
    actions = [
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:DeleteRule",
    ]
    resources = concat([local.groups], local.rule_arns)
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed}"
      values   = ["awsctl"]
    }
  }

  statement {
    sid       = "Targets"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = [local.groups]
  }

  statement {
    sid       = "Weights"
    actions   = ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"]
    resources = concat(local.listeners, local.rule_arns)
  }
}

resource "aws_iam_policy" "controller" {
  name        = var.name
  description = "awsctl: target groups, targets and weighted forward actions on ALB listeners"
  policy      = data.aws_iam_policy_document.controller.json
  tags        = var.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "controller" {
  name               = var.name
  description        = "IRSA role of awsctl (${var.namespace}/${var.service_account}) in ${var.cluster_name}"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = merge(var.tags, { "awsctl.io/cluster" = var.cluster_name })
}

resource "aws_iam_role_policy_attachment" "controller" {
  role       = aws_iam_role.controller.name
  policy_arn = aws_iam_policy.controller.arn
}
