output "listener_arn" {
  description = "Put into each Canary's spec.loadBalancer.listenerARN."
  value       = module.alb.listener_arn
}

output "vpc_id" {
  description = "The VPC of the ALB and of the Canary target groups."
  value       = var.vpc_id
}

output "service_account_role_arn" {
  description = "deploy/: the eks.amazonaws.com/role-arn annotation of the awsctl ServiceAccount."
  value       = module.controller_iam.role_arn
}

output "deploy_values" {
  description = "Everything deploy/ needs, for `kustomize edit` or a values file."
  value = {
    cluster_name = var.cluster_name
    role_arn     = module.controller_iam.role_arn
    region       = var.region
    listener_arn = module.alb.listener_arn
  }
}
