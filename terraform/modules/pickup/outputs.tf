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
