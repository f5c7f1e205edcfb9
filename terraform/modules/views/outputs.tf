output "proxy_url" {
  description = "The views through the RDS Proxy as the application role, a postgres:// URL without password (PICKUP_VIEWS for the gateway); the password is in app_secret_arn."
  value       = "postgres://${var.app_username}@${aws_db_proxy.this.endpoint}:5432/${var.database_name}?sslmode=require"

  # Usable once the cluster has an instance (and the proxy its target):
  # whoever is given the URL is created after them.
  depends_on = [aws_db_proxy_target.this, aws_rds_cluster_instance.this]
}

output "cluster_url" {
  description = "The views on the cluster's writer as the application role, a postgres:// URL without password (PICKUP_VIEWS for the Fargate tasks); the password is in app_secret_arn."
  value       = "postgres://${var.app_username}@${aws_rds_cluster.this.endpoint}:5432/${var.database_name}?sslmode=require"

  # Usable once the cluster has an instance: whoever is given the URL is
  # created after it.
  depends_on = [aws_rds_cluster_instance.this]
}

output "setup_url" {
  description = "The cluster's writer (never the proxy), a postgres:// URL without user or password (PICKUP_VIEWS of `pickup views setup`, which logs in with the master secret)."
  value       = "postgres://${aws_rds_cluster.this.endpoint}:5432/${var.database_name}?sslmode=require"

  # Usable once the cluster has an instance: whoever is given the URL is
  # created after it.
  depends_on = [aws_rds_cluster_instance.this]
}

output "master_secret_arn" {
  description = "ARN of the RDS-managed secret of the master user (JSON username and password, rotated by RDS): for `pickup views setup` only (PICKUP_VIEWS_ADMIN_SECRET)."
  value       = local.master_secret_arn
}

output "app_secret_arn" {
  description = "ARN of the application role's secret (JSON username and password): PICKUP_VIEWS_SECRET_ARN of every app process, PICKUP_VIEWS_APP_SECRET of `pickup views setup`, and the proxy's login."
  value       = aws_secretsmanager_secret.app.arn
}

output "app_username" {
  description = "Name of the application role."
  value       = var.app_username
}

output "max_capacity" {
  description = "Most Aurora capacity units of the cluster, for alarms near it."
  value       = var.max_capacity
}

output "cluster_identifier" {
  description = "Identifier of the Aurora cluster."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "proxy_name" {
  description = "Name of the RDS Proxy."
  value       = aws_db_proxy.this.name
}

output "proxy_endpoint" {
  description = "Host name of the RDS Proxy."
  value       = aws_db_proxy.this.endpoint
}

output "db_security_group_id" {
  description = "Security group of the Aurora cluster."
  value       = aws_security_group.db.id
}

output "proxy_security_group_id" {
  description = "Security group of the RDS Proxy."
  value       = aws_security_group.proxy.id
}

output "deletion_protection" {
  description = "Whether the cluster refuses to be deleted."
  value       = aws_rds_cluster.this.deletion_protection
}

output "final_snapshot" {
  description = "Whether deleting the cluster takes a final snapshot."
  value       = !aws_rds_cluster.this.skip_final_snapshot
}

output "secret_recovery_window_in_days" {
  description = "Days the app role's secret can be recovered once deleted (0: deleted at once)."
  value       = aws_secretsmanager_secret.app.recovery_window_in_days
}

output "direct_client_security_group_ids" {
  description = "Security groups the cluster admits PostgreSQL from, as its rules name them."
  value       = [for r in aws_vpc_security_group_ingress_rule.db_from_clients : r.referenced_security_group_id]
}

output "proxy_client_security_group_ids" {
  description = "Security groups the RDS Proxy admits PostgreSQL from, as its rules name them."
  value       = [for r in aws_vpc_security_group_ingress_rule.proxy_from_clients : r.referenced_security_group_id]
}
