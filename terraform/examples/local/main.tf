# The demo's AWS side against the local moto server: no credentials, no account, nothing billed.
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true

  endpoints {
    ec2        = var.endpoint
    elbv2      = var.endpoint
    elb        = var.endpoint
    iam        = var.endpoint
    sts        = var.endpoint
    cloudwatch = var.endpoint
  }
}

module "alb" {
  source       = "../../modules/alb"
  name         = var.name
  target_ports = [8080]
  tags         = { "awsctl.io/example" = "local" }
}

# A stand-in for the EKS cluster's OIDC provider, so the IRSA role is exercised end to end.
resource "aws_iam_openid_connect_provider" "cluster" {
  url             = "https://oidc.eks.us-east-1.amazonaws.com/id/AWSCTLLOCALDEMO"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}

module "controller_iam" {
  source            = "../../modules/controller-iam"
  name              = "${var.name}-controller"
  cluster_name      = var.cluster_name
  oidc_provider_arn = aws_iam_openid_connect_provider.cluster.arn
  oidc_issuer       = replace(aws_iam_openid_connect_provider.cluster.url, "https://", "")
  listener_arns     = [module.alb.http_listener_arn]
}
