output "api_url" {
  description = "Base URL of the pinning API."
  value       = module.gateway.url
}

output "ecr_repository_url" {
  description = "ECR repository to push the pickup image to, tagged as var.image_tag."
  value       = module.fetchers.ecr_repository_url
}

output "eventlog_secret_name" {
  description = "Secret to put the EventStoreDB/KurrentDB connection string in."
  value       = module.eventstore.secret_name
}

output "staging_bucket" {
  description = "Name of the staging bucket."
  value       = module.storage.staging_bucket
}

output "carpark_bucket" {
  description = "Name of the carpark bucket."
  value       = module.storage.carpark_bucket
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.fetchers.cluster_name
}

output "nat_public_ips" {
  description = "Addresses the tasks reach IPFS and the event store from."
  value       = module.network.nat_public_ips
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.observability.dashboard_name
}

output "pinned_topic_arn" {
  description = "SNS topic told of every validated CAR (null unless notify_on_pinned)."
  value       = var.notify_on_pinned ? aws_sns_topic.pinned[0].arn : null
}

output "fetchers_public" {
  description = "Whether the fetchers run in public subnets with their own public addresses."
  value       = var.fetchers_public
}

output "admin_task" {
  description = "What `aws ecs run-task` needs to run the one-off admin task (see terraform/README.md): cluster, task definition family, container name, subnets and security group."
  value = {
    cluster         = module.fetchers.cluster_name
    task_definition = module.fetchers.admin_task_definition
    container       = "admin"
    subnets         = module.network.private_subnet_ids
    security_group  = module.fetchers.task_security_group_id
  }
}

output "protection" {
  description = "What protects this deployment's data from `terraform destroy` (all true unless disposable)."
  value = {
    views_deletion_protection = module.views.deletion_protection
    views_final_snapshot      = module.views.final_snapshot
    buckets_kept              = !module.storage.force_destroy
    images_kept               = !module.fetchers.force_delete
    secrets_recoverable       = module.eventstore.recovery_window_in_days > 0 && module.fetchers.secret_recovery_window_in_days > 0 && module.views.secret_recovery_window_in_days > 0
  }
}
