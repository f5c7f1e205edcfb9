output "url" {
  description = "Base URL of the trustless gateway: GET <url>/ipfs/<cid>?format=car (https://domain_name with a certificate, otherwise http:// and the load balancer's DNS name)."
  value       = local.url
}

output "dns_name" {
  description = "DNS name of the load balancer: point a custom domain at it (CNAME or Route 53 alias)."
  value       = aws_lb.this.dns_name
}

output "load_balancer_arn_suffix" {
  description = "The load balancer's ARN suffix, the LoadBalancer dimension of its CloudWatch metrics."
  value       = aws_lb.this.arn_suffix
}

output "service_name" {
  description = "Name of the serve ECS service."
  value       = aws_ecs_service.this.name
}

output "security_group_id" {
  description = "Security group of the serve tasks: the databases must admit it on 5432."
  value       = aws_security_group.tasks.id
}

output "alb_security_group_id" {
  description = "Security group of the load balancer."
  value       = aws_security_group.alb.id
}

output "environment" {
  description = "Environment of the serve container (secrets excluded)."
  value       = local.environment
}

output "secrets" {
  description = "Variables ECS injects into the serve container from Secrets Manager, by name (only an EventStoreDB log's connection string)."
  value       = local.secrets
}

output "container_definitions" {
  description = "The serve task definition's containers, as ECS is given them."
  value       = local.container_definitions
}

output "task_policy" {
  description = "The serve task role's policy document, decoded."
  value       = local.task_policy
}

output "execution_policy" {
  description = "The serve execution role's policy document, decoded."
  value       = local.execution_policy
}

output "task_role_arn" {
  description = "ARN of the serve task role."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "Log group of the serve tasks."
  value       = aws_cloudwatch_log_group.this.name
}

output "start_after" {
  description = "What the service was made to start after (var.start_after, through terraform_data)."
  value       = terraform_data.start_after.output
}
