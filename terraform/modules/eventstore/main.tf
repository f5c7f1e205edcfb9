# The event log's connection string, in Secrets Manager. The cluster itself
# is the operator's (see README.md): this module holds only where it is and
# how to log in, for every role to read at start.

resource "aws_secretsmanager_secret" "eventlog" {
  name                    = coalesce(var.secret_name, "${var.name}/eventlog")
  description             = "EventStoreDB/KurrentDB connection string of pickup deployment ${var.name} (PICKUP_EVENTLOG)."
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "eventlog" {
  count = var.connection_string_version > 0 ? 1 : 0

  secret_id                = aws_secretsmanager_secret.eventlog.id
  secret_string_wo         = var.connection_string
  secret_string_wo_version = var.connection_string_version
}
