output "url" {
  description = "Base URL of the API: the custom domain when there is one, the execute-api address otherwise."
  value       = local.custom_domain ? "https://${var.domain_name}" : aws_apigatewayv2_api.this.api_endpoint
}

output "api_endpoint" {
  description = "The API's execute-api address."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "domain_target" {
  description = "Host name to point domain_name's DNS record at (null without a custom domain)."
  value       = local.custom_domain ? aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name : null
}

output "function_name" {
  description = "Name of the gateway Lambda."
  value       = aws_lambda_function.gateway.function_name
}

output "function_arn" {
  description = "ARN of the gateway Lambda."
  value       = aws_lambda_function.gateway.arn
}

output "environment" {
  description = "The function's environment variables (no secrets: those are read from Secrets Manager at start)."
  value       = local.environment
}

output "role_arn" {
  description = "ARN of the function's IAM role."
  value       = aws_iam_role.gateway.arn
}

output "security_group_id" {
  description = "Security group of the function: allow it into the views proxy."
  value       = aws_security_group.gateway.id
}

output "log_group_name" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.function.name
}
