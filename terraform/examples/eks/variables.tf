variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster; also awsctl's --cluster-name."
  type        = string
}

variable "vpc_id" {
  description = "The cluster's VPC: the ALB goes there so it can reach pod IPs."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123abcd."
  }
}

variable "public_subnet_ids" {
  description = "At least two public subnets (different AZs) for the ALB."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "An ALB needs at least two subnets."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS, or null for HTTP only."
  type        = string
  default     = null
}

variable "target_ports" {
  description = "Container ports of the apps awsctl will register as IP targets."
  type        = list(number)
  default     = [8080]
}
