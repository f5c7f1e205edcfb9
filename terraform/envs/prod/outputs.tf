output "api_url" {
  description = "Base URL of the pinning API."
  value       = module.pickup.api_url
}

output "ecr_repository_url" {
  description = "ECR repository to push the pickup image to, tagged as var.image_tag."
  value       = module.pickup.ecr_repository_url
}

output "eventlog_secret_name" {
  description = "The event log's secret: with eventlog = \"esdb\", the one to put the EventStoreDB/KurrentDB connection string in; with \"postgres\", the app role's (generated)."
  value       = module.pickup.eventlog_secret_name
}

output "eventlog_cluster" {
  description = "The PostgreSQL event log's cluster (null with eventlog = \"esdb\"): identifier, the roles' URL, the master secret's ARN, backup retention in days."
  value       = module.pickup.eventlog_cluster
}

output "staging_bucket" {
  description = "Name of the staging bucket."
  value       = module.pickup.staging_bucket
}

output "carpark_bucket" {
  description = "Name of the carpark bucket."
  value       = module.pickup.carpark_bucket
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.pickup.cluster_name
}

output "nat_public_ips" {
  description = "Addresses the tasks reach IPFS and the event store from."
  value       = module.pickup.nat_public_ips
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.pickup.dashboard_name
}

output "pinned_topic_arn" {
  description = "SNS topic told of every validated CAR (null unless notify_on_pinned)."
  value       = module.pickup.pinned_topic_arn
}

output "admin_task" {
  description = "What `aws ecs run-task` needs to run the one-off admin task (see terraform/README.md): cluster, task definition family, container name, subnets and security group."
  value       = module.pickup.admin_task
}

output "serve_url" {
  description = "Base URL of the trustless gateway over the carpark: GET <serve_url>/ipfs/<cid>?format=car."
  value       = module.pickup.serve_url
}

output "serve_dns_name" {
  description = "DNS name of the serve load balancer, to point serve_domain_name at."
  value       = module.pickup.serve_dns_name
}

output "serve_libp2p_addrs" {
  description = "The serve peer's libp2p addresses (TCP and QUIC on its network load balancer): what IPNI and delegated routing answer."
  value       = module.pickup.serve_libp2p_addrs
}

output "serve_libp2p_key_secret_arn" {
  description = "ARN of the secret that must hold the serve peer's libp2p key, created empty: write it once before the serve tasks can start (terraform/README.md, Deploying)."
  value       = module.pickup.serve_libp2p_key_secret_arn
}
