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
  description = "Security group of every task (fetchers, projector, admin): allow it into the views and the event store."
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
  description = "Variables ECS injects from Secrets Manager, by container (fetcher, projector, views-setup, admin) and name: where each comes from."
  value       = local.secrets
}

output "container_definitions" {
  description = "The containers of each task definition (fetcher, projector, admin), as ECS is given them."
  value       = local.container_definitions
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "admin_task_definition" {
  description = "Family of the one-off admin task definition (container admin): `aws ecs run-task` it with a command override, such as [\"tokens\",\"create\",\"--tenant\",\"NAME\"]."
  value       = aws_ecs_task_definition.this["admin"].family
}

output "libp2p_security_group_id" {
  description = "Security group admitting libp2p (TCP and QUIC, port 4001) into the fetchers."
  value       = aws_security_group.libp2p.id
}

output "fetcher_subnet_ids" {
  description = "Subnets the fetchers run in: the public ones when fetchers_public."
  value       = one(aws_ecs_service.fetcher.network_configuration).subnets
}

output "libp2p_seed_secret_arn" {
  description = "ARN of the generated secret the fetchers derive their libp2p keys from (PICKUP_LIBP2P_SEED)."
  value       = aws_secretsmanager_secret.libp2p_seed.arn
}

output "webhook_key_secret_arn" {
  description = "ARN of the generated secret the projector signs webhooks with (PICKUP_WEBHOOK_KEY)."
  value       = aws_secretsmanager_secret.webhook_key.arn
}

output "execution_policies" {
  description = "The execution roles' policy documents, by task, decoded."
  value       = local.execution_policies
}

output "task_policies" {
  description = "The task roles' policy documents, by task, decoded."
  value       = local.task_policies
}

output "task_role_arns" {
  description = "ARNs of the task roles, by service."
  value       = { for role, r in aws_iam_role.task : role => r.arn }
}

output "log_group_names" {
  description = "Log groups of the services, by service."
  value       = { for role, g in aws_cloudwatch_log_group.this : role => g.name }
}

output "force_delete" {
  description = "Whether `terraform destroy` deletes the ECR repository with its images."
  value       = aws_ecr_repository.this.force_delete
}

output "secret_recovery_window_in_days" {
  description = "Days the generated secrets (libp2p seed, webhook key) can be recovered once deleted; the shorter of the two (0: deleted at once)."
  value       = min(aws_secretsmanager_secret.libp2p_seed.recovery_window_in_days, aws_secretsmanager_secret.webhook_key.recovery_window_in_days)
}

output "image" {
  description = "The image every task runs: the repository URL and var.image_tag."
  value       = local.image
}

output "ecr_repository_arn" {
  description = "ARN of the ECR repository, for other tasks' execution roles to pull the image from."
  value       = aws_ecr_repository.this.arn
}
