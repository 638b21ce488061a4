provider "aws" {
  region = var.region
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_iam_openid_connect_provider" "this" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

module "alb" {
  source          = "../../modules/alb"
  name            = "${var.cluster_name}-canary"
  vpc_id          = var.vpc_id
  subnet_ids      = var.public_subnet_ids
  certificate_arn = var.certificate_arn
  target_ports    = var.target_ports
}

module "controller_iam" {
  source            = "../../modules/controller-iam"
  name              = "${var.cluster_name}-awsctl"
  cluster_name      = var.cluster_name
  oidc_provider_arn = data.aws_iam_openid_connect_provider.this.arn
  oidc_issuer       = replace(data.aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
  listener_arns     = compact([module.alb.http_listener_arn, module.alb.https_listener_arn])
}

# Let the ALB reach pod IPs: the cluster security group admits the ALB on the target ports.
resource "aws_security_group_rule" "cluster_from_alb" {
  for_each                 = toset([for p in var.target_ports : tostring(p)])
  type                     = "ingress"
  security_group_id        = data.aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  protocol                 = "tcp"
  from_port                = tonumber(each.value)
  to_port                  = tonumber(each.value)
  source_security_group_id = module.alb.alb_security_group_id
  description              = "ALB to pod IPs (awsctl IP targets) on ${each.value}"
}
