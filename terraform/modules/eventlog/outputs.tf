output "url" {
  description = "The event log on the cluster's writer as the application role, a postgres:// URL without password (PICKUP_EVENTLOG of every role); the password is in app_secret_arn."
  value       = "postgres://${var.app_username}@${aws_rds_cluster.this.endpoint}:5432/${var.database_name}?sslmode=require"

  # Usable once the cluster has an instance: whoever is given the URL is
  # created after it.
  depends_on = [aws_rds_cluster_instance.this]
}

output "setup_url" {
  description = "The cluster's writer, a postgres:// URL without user or password (PICKUP_EVENTLOG of `pickup events setup`, which logs in with the master secret)."
  value       = "postgres://${aws_rds_cluster.this.endpoint}:5432/${var.database_name}?sslmode=require"

  depends_on = [aws_rds_cluster_instance.this]
}

output "master_secret_arn" {
  description = "ARN of the RDS-managed secret of the master user (JSON username and password, rotated by RDS): for `pickup events setup` only (PICKUP_EVENTLOG_ADMIN_SECRET)."
  value       = aws_rds_cluster.this.master_user_secret[0].secret_arn
}

output "app_secret_arn" {
  description = "ARN of the application role's secret (JSON username and password): PICKUP_EVENTLOG_SECRET_ARN of every role, PICKUP_EVENTLOG_APP_SECRET of `pickup events setup`."
  value       = aws_secretsmanager_secret.app.arn
}

output "app_secret_name" {
  description = "Name of the application role's secret."
  value       = aws_secretsmanager_secret.app.name
}

output "cluster_identifier" {
  description = "Identifier of the Aurora cluster."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "db_security_group_id" {
  description = "Security group of the Aurora cluster."
  value       = aws_security_group.db.id
}

output "client_security_group_ids" {
  description = "Security groups the cluster admits PostgreSQL from, as its rules name them."
  value       = [for r in aws_vpc_security_group_ingress_rule.db_from_clients : r.referenced_security_group_id]
}

output "backup_retention_days" {
  description = "Days automated backups and point-in-time recovery reach back."
  value       = aws_rds_cluster.this.backup_retention_period
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
