variable "name" {
  description = "Name of the load balancer; also the prefix of the security groups and, when created, the VPC."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,30}[a-zA-Z0-9]$", var.name))
    error_message = "name must be 2-32 alphanumerics or hyphens, not starting or ending with a hyphen (ELBv2 limit)."
  }
}

variable "vpc_id" {
  description = "Existing VPC for the ALB. Null creates a VPC with two public subnets."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123abcd."
  }
}

variable "subnet_ids" {
  description = "Subnets for the ALB (at least two, in different AZs) when vpc_id is given."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.subnet_ids) == 0 || length(var.subnet_ids) >= 2
    error_message = "An ALB needs at least two subnets in different availability zones."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC this module creates (only used when vpc_id is null)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block."
  }
}

variable "availability_zones" {
  description = "AZs of the two public subnets this module creates (only used when vpc_id is null)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "internal" {
  description = "An internal ALB (true) or an internet-facing one (false)."
  type        = bool
  default     = false
}

variable "ingress_cidrs" {
  description = "Clients allowed to reach the listeners."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "target_ports" {
  description = "Container ports awsctl registers as IP targets; the ALB may reach pod IPs on these (no port translation for headless Services)."
  type        = list(number)
  default     = [8080]

  validation {
    condition     = alltrue([for p in var.target_ports : p >= 1 && p <= 65535])
    error_message = "target_ports must be between 1 and 65535."
  }
}

variable "pod_cidrs" {
  description = "CIDRs pod IPs come from (the VPC CNI uses the VPC's subnets). Empty means the VPC CIDR."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener on 443. Null: HTTP only."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "tags" {
  description = "Tags for every resource this module creates."
  type        = map(string)
  default     = {}
}
