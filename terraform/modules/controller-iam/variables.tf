variable "name" {
  description = "Name of the IAM role and policy."
  type        = string
  default     = "awsctl-controller"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.name))
    error_message = "name must be a valid IAM role name (1-64 characters of [A-Za-z0-9+=,.@_-])."
  }
}

variable "cluster_name" {
  description = "The value awsctl writes into the awsctl.io/cluster tag (`awsctl run --cluster-name`)."
  type        = string

  validation {
    condition     = length(var.cluster_name) > 0
    error_message = "cluster_name must not be empty."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https:// (e.g. oidc.eks.us-east-1.amazonaws.com/id/ABC)."
  type        = string

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "Give oidc_issuer without the https:// prefix."
  }
}

variable "namespace" {
  description = "Namespace of awsctl's ServiceAccount (deploy/ uses awsctl-system)."
  type        = string
  default     = "awsctl-system"
}

variable "service_account" {
  description = "Name of awsctl's ServiceAccount (deploy/ uses awsctl)."
  type        = string
  default     = "awsctl"
}

variable "listener_arns" {
  description = "Listeners awsctl may change (default actions, rules it takes over). Empty means any listener in the account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.listener_arns : can(regex("^arn:aws[a-z-]*:elasticloadbalancing:", a))])
    error_message = "listener_arns must be ELBv2 listener ARNs."
  }
}

variable "tags" {
  description = "Tags for the role and the policy."
  type        = map(string)
  default     = {}
}
