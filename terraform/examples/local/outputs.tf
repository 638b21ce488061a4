output "listener_arn" {
  description = "spec.loadBalancer.listenerARN of the demo Canary."
  value       = module.alb.listener_arn
}

output "vpc_id" {
  description = "VPC of the ALB (the Canary's target groups go here)."
  value       = module.alb.vpc_id
}

output "role_arn" {
  description = "awsctl's IRSA role."
  value       = module.controller_iam.role_arn
}
