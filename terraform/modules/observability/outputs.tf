output "alarm_arns" {
  description = "ARNs of the alarms, by name: dead_letters, oldest_queued_age, api_errors, lambda_errors, projector_silent, the views_* and proxy_* ones, and <service>_tasks_below_desired."
  value = merge(
    { for k, a in aws_cloudwatch_metric_alarm.this : k => a.arn },
    { for k, a in aws_cloudwatch_metric_alarm.tasks_below_desired : "${k}_tasks_below_desired" => a.arn },
  )
}

output "task_failures_rule" {
  description = "Name of the EventBridge rule matching the cluster's failed service tasks."
  value       = aws_cloudwatch_event_rule.task_failures.name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
