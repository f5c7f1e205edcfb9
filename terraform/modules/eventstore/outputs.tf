output "secret_arn" {
  description = "ARN of the secret holding the event log's connection string (PICKUP_EVENTLOG_SECRET_ARN, or PICKUP_EVENTLOG through ECS secrets)."
  value       = aws_secretsmanager_secret.eventlog.arn
}

output "secret_name" {
  description = "Name of that secret, for `aws secretsmanager put-secret-value --secret-id`."
  value       = aws_secretsmanager_secret.eventlog.name
}

output "recovery_window_in_days" {
  description = "Days the secret can be recovered once deleted (0: deleted at once)."
  value       = aws_secretsmanager_secret.eventlog.recovery_window_in_days
}
