output "alarm_arns" {
  description = "ARNs of the alarms, by name: dead_letters, oldest_queued_age, api_errors, lambda_errors, projector_silent."
  value       = { for k, a in aws_cloudwatch_metric_alarm.this : k => a.arn }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
