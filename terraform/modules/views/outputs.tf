output "proxy_url" {
  description = "The views through the RDS Proxy, as a postgres:// URL without password (PICKUP_VIEWS for the gateway); the password is in master_secret_arn."
  value       = "postgres://${var.master_username}@${aws_db_proxy.this.endpoint}:5432/${var.database_name}?sslmode=require"
}

output "cluster_url" {
  description = "The views on the cluster's writer, as a postgres:// URL without password (PICKUP_VIEWS for the Fargate tasks); the password is in master_secret_arn."
  value       = "postgres://${var.master_username}@${aws_rds_cluster.this.endpoint}:5432/${var.database_name}?sslmode=require"
}

output "master_secret_arn" {
  description = "ARN of the RDS-managed secret holding the views user's username and password (JSON), rotated by RDS."
  value       = local.master_secret_arn
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
