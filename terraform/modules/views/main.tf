# The views: Aurora PostgreSQL Serverless v2, with an RDS Proxy in front of it
# for the Lambda, whose many short-lived instances would otherwise exhaust
# the database's connections. The master password is managed by RDS in
# Secrets Manager; the proxy logs in with it, and so do the roles.

data "aws_region" "current" {}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-views"
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "db" {
  name        = "${var.name}-views-db"
  description = "Aurora cluster of pickup's views: PostgreSQL from the proxy and the tasks only."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-views-db" })
}

resource "aws_security_group" "proxy" {
  name        = "${var.name}-views-proxy"
  description = "RDS Proxy of pickup's views: PostgreSQL from the gateway, and to the cluster."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-views-proxy" })
}

resource "aws_vpc_security_group_ingress_rule" "db_from_proxy" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.proxy.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from the RDS Proxy"
}

resource "aws_vpc_security_group_ingress_rule" "db_from_clients" {
  count = length(var.direct_client_security_group_ids)

  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = var.direct_client_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from pickup's tasks"
}

resource "aws_vpc_security_group_ingress_rule" "proxy_from_clients" {
  count = length(var.proxy_client_security_group_ids)

  security_group_id            = aws_security_group.proxy.id
  referenced_security_group_id = var.proxy_client_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from pickup's gateway"
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_db" {
  security_group_id            = aws_security_group.proxy.id
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL to the Aurora cluster"
}

resource "aws_rds_cluster" "this" {
  cluster_identifier              = "${var.name}-views"
  engine                          = "aurora-postgresql"
  engine_mode                     = "provisioned"
  engine_version                  = var.engine_version
  database_name                   = var.database_name
  master_username                 = var.master_username
  manage_master_user_password     = true
  storage_encrypted               = true
  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.db.id]
  backup_retention_period         = var.backup_retention_days
  copy_tags_to_snapshot           = true
  deletion_protection             = var.deletion_protection
  skip_final_snapshot             = var.skip_final_snapshot
  final_snapshot_identifier       = var.skip_final_snapshot ? null : "${var.name}-views-final"
  enabled_cloudwatch_logs_exports = ["postgresql"]

  serverlessv2_scaling_configuration {
    min_capacity = var.min_capacity
    max_capacity = var.max_capacity
  }

  tags = var.tags
}

resource "aws_rds_cluster_instance" "this" {
  count = var.instance_count

  identifier           = "${var.name}-views-${count.index}"
  cluster_identifier   = aws_rds_cluster.this.id
  instance_class       = "db.serverless"
  engine               = aws_rds_cluster.this.engine
  engine_version       = aws_rds_cluster.this.engine_version
  db_subnet_group_name = aws_db_subnet_group.this.name

  tags = var.tags
}

locals {
  master_secret_arn = aws_rds_cluster.this.master_user_secret[0].secret_arn
}

# The proxy reads the RDS-managed secret to log in to the cluster, and
# nothing else.
resource "aws_iam_role" "proxy" {
  name = "${var.name}-views-proxy"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "proxy" {
  name = "read-master-secret"
  role = aws_iam_role.proxy.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ReadMasterSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [local.master_secret_arn]
    }]
  })
}

resource "aws_db_proxy" "this" {
  name                   = "${var.name}-views"
  engine_family          = "POSTGRESQL"
  role_arn               = aws_iam_role.proxy.arn
  vpc_subnet_ids         = var.subnet_ids
  vpc_security_group_ids = [aws_security_group.proxy.id]
  require_tls            = true
  idle_client_timeout    = 1800

  auth {
    auth_scheme               = "SECRETS"
    secret_arn                = local.master_secret_arn
    iam_auth                  = "DISABLED"
    client_password_auth_type = "POSTGRES_SCRAM_SHA_256"
    description               = "pickup's views user"
  }

  tags = var.tags
}

resource "aws_db_proxy_default_target_group" "this" {
  db_proxy_name = aws_db_proxy.this.name

  connection_pool_config {
    max_connections_percent      = 90
    max_idle_connections_percent = 10
    connection_borrow_timeout    = 30
  }
}

resource "aws_db_proxy_target" "this" {
  db_proxy_name         = aws_db_proxy.this.name
  target_group_name     = aws_db_proxy_default_target_group.this.name
  db_cluster_identifier = aws_rds_cluster.this.cluster_identifier
}
