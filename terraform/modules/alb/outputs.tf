output "listener_arn" {
  description = "The listener a Canary drives (spec.loadBalancer.listenerARN): HTTPS when a certificate is given, else HTTP."
  value       = var.certificate_arn == null ? aws_lb_listener.this["http"].arn : aws_lb_listener.this["https"].arn
}

output "http_listener_arn" {
  description = "The HTTP listener on port 80."
  value       = aws_lb_listener.this["http"].arn
}

output "https_listener_arn" {
  description = "The HTTPS listener on port 443, or null."
  value       = var.certificate_arn == null ? null : aws_lb_listener.this["https"].arn
}

output "vpc_id" {
  description = "VPC of the ALB: a Canary's target groups live here (spec.loadBalancer.targetGroup.vpcID)."
  value       = local.vpc_id
}

output "subnet_ids" {
  description = "Subnets of the ALB."
  value       = local.subnet_ids
}

output "load_balancer_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "dns_name" {
  description = "DNS name clients use."
  value       = aws_lb.this.dns_name
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "pod_security_group_id" {
  description = "Attach to the nodes (or to pods with security groups for pods) so the ALB reaches pod IPs."
  value       = aws_security_group.pods.id
}
