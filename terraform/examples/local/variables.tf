variable "endpoint" {
  description = "The local moto server (`awsctl dev env` prints it as AWS_ENDPOINT_URL)."
  type        = string
  default     = "http://127.0.0.1:5000"

  validation {
    condition     = can(regex("^https?://", var.endpoint))
    error_message = "endpoint must be an http(s) URL."
  }
}

variable "name" {
  description = "Name of the demo ALB."
  type        = string
  default     = "awsctl-demo"
}

variable "cluster_name" {
  description = "awsctl's cluster name (the awsctl.io/cluster tag)."
  type        = string
  default     = "default"
}
