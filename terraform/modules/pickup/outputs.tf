output "api_url" {
  description = "Base URL of the pinning API."
  value       = module.gateway.url
}

output "ecr_repository_url" {
  description = "ECR repository to push the pickup image to, tagged as var.image_tag."
  value       = module.fetchers.ecr_repository_url
}

output "eventlog" {
  description = "The event log's kind: \"postgres\" (Aurora PostgreSQL, made here) or \"esdb\" (EventStoreDB/KurrentDB, the operator's)."
  value       = var.eventlog
}

output "eventlog_secret_name" {
  description = "The event log's secret: for \"esdb\", the one to put the EventStoreDB/KurrentDB connection string in; for \"postgres\", the app role's (generated)."
  value       = local.eventlog.secret_name
}

output "eventlog_secret_arn" {
  description = "ARN of the event log's secret every role is given (PICKUP_EVENTLOG_SECRET_ARN, or for esdb the injected PICKUP_EVENTLOG)."
  value       = local.eventlog.secret_arn
}

output "eventlog_cluster" {
  description = "The PostgreSQL event log's cluster (null for esdb): identifier, the roles' URL, the master secret's ARN, backup retention in days."
  value = var.eventlog == "postgres" ? {
    identifier            = module.eventlog[0].cluster_identifier
    url                   = module.eventlog[0].url
    master_secret_arn     = module.eventlog[0].master_secret_arn
    backup_retention_days = module.eventlog[0].backup_retention_days
  } : null
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
    eventlog_protected        = var.eventlog == "postgres" ? module.eventlog[0].deletion_protection && module.eventlog[0].final_snapshot : null
    buckets_kept              = !module.storage.force_destroy
    images_kept               = !module.fetchers.force_delete
    secrets_recoverable       = local.eventlog.recoverable && module.fetchers.secret_recovery_window_in_days > 0 && module.views.secret_recovery_window_in_days > 0 && module.serve.secret_recovery_window_in_days > 0
  }
}

output "serve_url" {
  description = "Base URL of the trustless gateway over the carpark (`pickup serve`): GET <serve_url>/ipfs/<cid>?format=car."
  value       = module.serve.url
}

output "serve_dns_name" {
  description = "DNS name of the serve load balancer, to point a custom domain at (serve_domain_name)."
  value       = module.serve.dns_name
}

output "serve_libp2p_addrs" {
  description = "The serve peer's libp2p addresses (TCP and QUIC on its network load balancer), as the IPNI advertisements and delegated routing give them."
  value       = module.serve.libp2p_addrs
}

output "serve_libp2p_key_secret_arn" {
  description = "ARN of the secret that must hold the serve peer's libp2p key (PICKUP_SERVE_LIBP2P_KEY), created empty: write it once (terraform/README.md)."
  value       = module.serve.libp2p_key_secret_arn
}

output "serve" {
  description = "The serve role as wired: its service, the tasks' security group, environment, injected secrets, task and execution role policies."
  value = {
    service_name      = module.serve.service_name
    security_group_id = module.serve.security_group_id
    environment       = module.serve.environment
    secrets           = module.serve.secrets
    task_policy       = module.serve.task_policy
    execution_policy  = module.serve.execution_policy
  }
}
