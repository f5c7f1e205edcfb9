mock_provider "aws" {
  override_during = plan

  mock_resource "aws_rds_cluster" {
    defaults = {
      endpoint           = "eventlog.cluster-abc.eu-west-1.rds.amazonaws.com"
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-log", kms_key_id = "", secret_status = "active" }]
    }
  }

  mock_resource "aws_secretsmanager_secret" {
    defaults = {
      arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-app-AbCdEf"
    }
  }

  mock_data "aws_secretsmanager_random_password" {
    defaults = {
      random_password = "generated-by-secrets-manager-0123456789abcdefghij"
    }
  }
}

variables {
  name                      = "pickup-test"
  vpc_id                    = "vpc-1"
  subnet_ids                = ["subnet-a", "subnet-b"]
  client_security_group_ids = ["sg-tasks", "sg-gateway"]
}

run "aurora_system_of_record" {
  command = plan

  assert {
    condition     = aws_rds_cluster.this.engine == "aurora-postgresql" && aws_rds_cluster.this.cluster_identifier == "pickup-test-eventlog"
    error_message = "the event log must be an Aurora PostgreSQL cluster of its own"
  }

  assert {
    condition     = aws_rds_cluster.this.storage_encrypted && aws_rds_cluster.this.manage_master_user_password && aws_rds_cluster.this.master_password == null
    error_message = "the event log's storage must be encrypted and its master password managed by RDS, out of Terraform's state"
  }

  assert {
    condition     = aws_rds_cluster.this.backup_retention_period >= 7
    error_message = "the event log's backups (point-in-time recovery) must be kept at least a week by default"
  }

  assert {
    condition     = aws_rds_cluster.this.deletion_protection && !aws_rds_cluster.this.skip_final_snapshot
    error_message = "the event log must be protected from deletion by default"
  }

  assert {
    condition     = output.client_security_group_ids == ["sg-tasks", "sg-gateway"]
    error_message = "the cluster must admit PostgreSQL from exactly the named clients"
  }
}

run "app_role_secret" {
  command = plan

  assert {
    condition     = aws_secretsmanager_secret.app.name == "pickup-test/eventlog-app" && aws_secretsmanager_secret_version.app.secret_string_wo_version == 1
    error_message = "the event log's app secret must be generated, written once as a write-only value"
  }

  assert {
    condition     = output.url == "postgres://pickup_log_app@eventlog.cluster-abc.eu-west-1.rds.amazonaws.com:5432/pickup_events?sslmode=require"
    error_message = "the roles' URL must be the writer's, as the app role, without password, with TLS"
  }

  assert {
    condition     = output.setup_url == "postgres://eventlog.cluster-abc.eu-west-1.rds.amazonaws.com:5432/pickup_events?sslmode=require"
    error_message = "events setup must connect to the writer with no user (the master secret gives it)"
  }

  assert {
    condition     = output.app_secret_arn != output.master_secret_arn
    error_message = "the app role's secret must not be the master secret"
  }
}

run "backups_cannot_be_off" {
  command = plan

  variables {
    backup_retention_days = 0
  }

  expect_failures = [var.backup_retention_days]
}
