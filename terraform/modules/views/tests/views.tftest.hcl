mock_provider "aws" {
  override_during = plan

  mock_resource "aws_rds_cluster" {
    defaults = {
      endpoint           = "views.cluster-abc.eu-west-1.rds.amazonaws.com"
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc", kms_key_id = "", secret_status = "active" }]
    }
  }

  mock_resource "aws_db_proxy" {
    defaults = {
      endpoint = "views.proxy-abc.eu-west-1.rds.amazonaws.com"
    }
  }

  mock_resource "aws_secretsmanager_secret" {
    defaults = {
      arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
    }
  }

  override_resource {
    target = aws_security_group.db
    values = { id = "sg-views-db" }
  }

  override_resource {
    target = aws_security_group.proxy
    values = { id = "sg-views-proxy" }
  }

  mock_data "aws_secretsmanager_random_password" {
    defaults = {
      random_password = "generated-by-secrets-manager-0123456789abcdefghij"
    }
  }
}

variables {
  name                             = "pickup-test"
  vpc_id                           = "vpc-1"
  subnet_ids                       = ["subnet-a", "subnet-b"]
  proxy_client_security_group_ids  = ["sg-gateway"]
  direct_client_security_group_ids = ["sg-tasks"]
}

run "aurora_serverless_v2" {
  command = plan

  assert {
    condition     = aws_rds_cluster.this.engine == "aurora-postgresql" && aws_rds_cluster.this.engine_mode == "provisioned"
    error_message = "the views must run on Aurora PostgreSQL"
  }

  assert {
    condition     = alltrue([for i in aws_rds_cluster_instance.this : i.instance_class == "db.serverless"])
    error_message = "instances must be Serverless v2"
  }

  assert {
    condition     = one(aws_rds_cluster.this.serverlessv2_scaling_configuration).min_capacity == 0.5 && one(aws_rds_cluster.this.serverlessv2_scaling_configuration).max_capacity == 4
    error_message = "the capacity range must come from the variables"
  }

  assert {
    condition     = aws_rds_cluster.this.storage_encrypted && aws_rds_cluster.this.manage_master_user_password && aws_rds_cluster.this.master_password == null
    error_message = "storage must be encrypted and the password managed by RDS, out of Terraform's state"
  }

  assert {
    condition     = aws_rds_cluster.this.deletion_protection && !aws_rds_cluster.this.skip_final_snapshot
    error_message = "the cluster must be protected from deletion by default"
  }
}

run "proxy_for_the_lambda" {
  command = plan

  assert {
    condition     = aws_db_proxy.this.engine_family == "POSTGRESQL" && aws_db_proxy.this.require_tls
    error_message = "the proxy must speak PostgreSQL over TLS only"
  }

  assert {
    condition     = [for a in aws_db_proxy.this.auth : a.secret_arn] == ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"]
    error_message = "the proxy must log in as the application role, with its secret, and never as the master user"
  }

  assert {
    condition     = aws_db_proxy_target.this.db_cluster_identifier == aws_rds_cluster.this.cluster_identifier
    error_message = "the proxy must target the cluster"
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.proxy.policy).Statement == [{
      Sid      = "ReadAppSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"]
    }]
    error_message = "the proxy's role may read the application role's secret and nothing else"
  }

  assert {
    condition     = output.proxy_url == "postgres://pickup_app@views.proxy-abc.eu-west-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "proxy_url must point at the proxy as the application role, without a password"
  }

  assert {
    condition     = output.cluster_url == "postgres://pickup_app@views.cluster-abc.eu-west-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "cluster_url must point at the writer as the application role, without a password"
  }

  assert {
    condition     = output.setup_url == "postgres://views.cluster-abc.eu-west-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "setup_url must point at the writer (never the proxy), with neither user nor password"
  }
}

run "app_role_secret" {
  command = plan

  assert {
    condition     = aws_secretsmanager_secret_version.app.secret_id == aws_secretsmanager_secret.app.id && aws_secretsmanager_secret_version.app.secret_string == null && aws_secretsmanager_secret_version.app.secret_string_wo_version == 1
    error_message = "the app role's password must be written once, write-only, never as secret_string (which the state keeps)"
  }

  assert {
    condition     = output.app_secret_arn == aws_secretsmanager_secret.app.arn && output.app_secret_arn != output.master_secret_arn
    error_message = "the app processes' secret must be the app role's, never the master user's"
  }

  assert {
    condition     = aws_secretsmanager_secret.app.recovery_window_in_days == 30
    error_message = "the app role's secret must be recoverable by default"
  }
}

run "proxy_reaches_the_cluster" {
  command = plan

  assert {
    condition = (aws_vpc_security_group_ingress_rule.db_from_proxy.security_group_id == aws_security_group.db.id &&
      aws_vpc_security_group_ingress_rule.db_from_proxy.referenced_security_group_id == aws_security_group.proxy.id &&
    aws_vpc_security_group_ingress_rule.db_from_proxy.ip_protocol == "tcp")
    error_message = "the cluster's security group must admit PostgreSQL from the proxy's: without it the gateway cannot read a view"
  }

  assert {
    condition = (aws_vpc_security_group_egress_rule.proxy_to_db.security_group_id == aws_security_group.proxy.id &&
      aws_vpc_security_group_egress_rule.proxy_to_db.referenced_security_group_id == aws_security_group.db.id &&
    aws_vpc_security_group_egress_rule.proxy_to_db.from_port == 5432)
    error_message = "the proxy's security group must let PostgreSQL out to the cluster's"
  }

  assert {
    condition     = aws_db_proxy.this.vpc_security_group_ids == toset([aws_security_group.proxy.id]) && aws_rds_cluster.this.vpc_security_group_ids == toset([aws_security_group.db.id])
    error_message = "the proxy and the cluster must sit in the security groups the rules are on"
  }
}

run "only_named_clients_get_in" {
  command = plan

  assert {
    condition     = [for r in aws_vpc_security_group_ingress_rule.proxy_from_clients : r.referenced_security_group_id] == ["sg-gateway"]
    error_message = "only the gateway may reach the proxy"
  }

  assert {
    condition     = [for r in aws_vpc_security_group_ingress_rule.db_from_clients : r.referenced_security_group_id] == ["sg-tasks"]
    error_message = "only the tasks may reach the cluster directly"
  }

  assert {
    condition = alltrue([for r in concat(aws_vpc_security_group_ingress_rule.proxy_from_clients, aws_vpc_security_group_ingress_rule.db_from_clients, [aws_vpc_security_group_ingress_rule.db_from_proxy]) :
    r.from_port == 5432 && r.to_port == 5432 && r.cidr_ipv4 == null])
    error_message = "ingress must be PostgreSQL's port from named security groups, never from address ranges"
  }
}
