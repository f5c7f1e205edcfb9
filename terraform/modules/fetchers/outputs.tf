output "ecr_repository_url" {
  description = "URL of the ECR repository to push the pickup image to (`make image`, then tag and push as var.image_tag)."
  value       = aws_ecr_repository.this.repository_url
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "fetcher_service_name" {
  description = "Name of the fetchers' ECS service."
  value       = aws_ecs_service.fetcher.name
}

output "projector_service_name" {
  description = "Name of the projector's ECS service."
  value       = aws_ecs_service.projector.name
}

output "task_security_group_id" {
  description = "Security group of the tasks: allow it into the views and the event store."
  value       = aws_security_group.tasks.id
}

output "fetcher_environment" {
  description = "Environment of the fetcher container (secrets excluded)."
  value       = local.fetcher_environment
}

output "projector_environment" {
  description = "Environment of the projector container (secrets excluded)."
  value       = local.projector_environment
}

output "secrets" {
  description = "Variables ECS injects into both containers from Secrets Manager, by name: where each comes from."
  value       = { for s in local.secrets : s.name => s.valueFrom }
}

output "task_role_arns" {
  description = "ARNs of the task roles, by service."
  value       = { for role, r in aws_iam_role.task : role => r.arn }
}

output "log_group_names" {
  description = "Log groups of the services, by service."
  value       = { for role, g in aws_cloudwatch_log_group.this : role => g.name }
}
