output "role_arn" {
  description = "Annotate awsctl's ServiceAccount with eks.amazonaws.com/role-arn set to this."
  value       = aws_iam_role.controller.arn
}

output "policy_arn" {
  description = "The least-privilege policy attached to the role."
  value       = aws_iam_policy.controller.arn
}

output "policy_json" {
  description = "The policy document, for review."
  value       = data.aws_iam_policy_document.controller.json
}
