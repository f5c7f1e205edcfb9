output "url" {
  description = "Base URL of the trustless gateway: GET <url>/ipfs/<cid>?format=car (https://domain_name with a certificate, otherwise http:// and the load balancer's DNS name)."
  value       = local.url
}

output "dns_name" {
  description = "DNS name of the load balancer: point a custom domain at it (CNAME or Route 53 alias)."
  value       = aws_lb.this.dns_name
}

output "libp2p_dns_name" {
  description = "DNS name of the network load balancer in front of the serve tasks' libp2p port (4002, TCP and QUIC)."
  value       = aws_lb.libp2p.dns_name
}

output "libp2p_addrs" {
  description = "The serve peer's announced multiaddrs (PICKUP_SERVE_LIBP2P_ANNOUNCE): TCP and QUIC on the network load balancer."
  value       = local.libp2p_announce
}

output "libp2p_key_secret_arn" {
  description = "ARN of the secret holding the serve peer's libp2p key (PICKUP_SERVE_LIBP2P_KEY), created empty: write it once, before the serve tasks can start (terraform/README.md)."
  value       = aws_secretsmanager_secret.libp2p_key.arn
}

output "libp2p_key_secret_name" {
  description = "Name of that secret (<name>/serve-libp2p-key)."
  value       = aws_secretsmanager_secret.libp2p_key.name
}

output "secret_recovery_window_in_days" {
  description = "Days the peer key secret can be recovered once deleted (0: deleted at once)."
  value       = aws_secretsmanager_secret.libp2p_key.recovery_window_in_days
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
  description = "Variables ECS injects into the serve container from Secrets Manager, by name: the peer key and, with EventStoreDB, the log's connection string."
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
