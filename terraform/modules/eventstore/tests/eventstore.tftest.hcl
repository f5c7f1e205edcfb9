mock_provider "aws" {}

variables {
  name = "pickup-test"
}

# Plans only: terraform test (1.11) cannot carry an ephemeral variable from a
# run's plan to its apply.
run "secret_left_to_the_operator" {
  command = plan

  assert {
    condition     = aws_secretsmanager_secret.eventlog.name == "pickup-test/eventlog"
    error_message = "the secret must be named after the deployment"
  }

  assert {
    condition     = length(aws_secretsmanager_secret_version.eventlog) == 0
    error_message = "without a connection string, Terraform must not write a value"
  }
}

run "connection_string_written_write_only" {
  command = plan

  variables {
    connection_string         = "kurrentdb+discover://admin:changeit@cluster.example:2113"
    connection_string_version = 1
  }

  assert {
    condition     = length(aws_secretsmanager_secret_version.eventlog) == 1
    error_message = "a connection string must be written to the secret"
  }

  assert {
    condition     = aws_secretsmanager_secret_version.eventlog[0].secret_string_wo == null && aws_secretsmanager_secret_version.eventlog[0].secret_string_wo_version == 1
    error_message = "the connection string must stay out of the state"
  }
}

run "rejects_other_schemes" {
  command = plan

  variables {
    connection_string         = "postgres://nope"
    connection_string_version = 1
  }

  expect_failures = [var.connection_string]
}
