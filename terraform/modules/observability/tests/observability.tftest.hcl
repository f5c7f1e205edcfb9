mock_provider "aws" {}

variables {
  name                   = "pickup-test"
  function_name          = "pickup-test-gateway"
  cluster_name           = "pickup-test"
  fetcher_service_name   = "pickup-test-fetcher"
  projector_service_name = "pickup-test-projector"
  alarm_actions          = ["arn:aws:sns:eu-west-1:111122223333:pickup-test-alarms"]
}

run "alarms" {
  command = plan

  variables {
    oldest_queued_age_threshold_seconds = 900
  }

  assert {
    condition = (aws_cloudwatch_metric_alarm.this["dead_letters"].metric_name == "DeadLettered" &&
      aws_cloudwatch_metric_alarm.this["dead_letters"].namespace == "Pickup" &&
      aws_cloudwatch_metric_alarm.this["dead_letters"].dimensions == tomap({ Deployment = "pickup-test" }) &&
      aws_cloudwatch_metric_alarm.this["dead_letters"].comparison_operator == "GreaterThanThreshold" &&
    aws_cloudwatch_metric_alarm.this["dead_letters"].threshold == 0)
    error_message = "a single dead letter of this deployment must raise an alarm"
  }

  assert {
    condition = (aws_cloudwatch_metric_alarm.this["oldest_queued_age"].metric_name == "OldestQueuedAgeSeconds" &&
      aws_cloudwatch_metric_alarm.this["oldest_queued_age"].threshold == 900 &&
    aws_cloudwatch_metric_alarm.this["oldest_queued_age"].statistic == "Maximum")
    error_message = "the age of the oldest queued pin must alarm above the given threshold"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["api_errors"].metric_name == "ApiErrors" && aws_cloudwatch_metric_alarm.this["api_errors"].threshold == 5
    error_message = "API errors must raise an alarm"
  }

  assert {
    condition = (aws_cloudwatch_metric_alarm.this["lambda_errors"].namespace == "AWS/Lambda" &&
      aws_cloudwatch_metric_alarm.this["lambda_errors"].metric_name == "Errors" &&
    aws_cloudwatch_metric_alarm.this["lambda_errors"].dimensions == tomap({ FunctionName = "pickup-test-gateway" }))
    error_message = "the gateway Lambda's own errors must raise an alarm"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["projector_silent"].treat_missing_data == "breaching" && aws_cloudwatch_metric_alarm.this["projector_silent"].comparison_operator == "LessThanThreshold"
    error_message = "a silent projector must raise an alarm"
  }

  assert {
    condition = alltrue([for a in aws_cloudwatch_metric_alarm.this :
    a.alarm_actions == toset(["arn:aws:sns:eu-west-1:111122223333:pickup-test-alarms"]) && a.ok_actions == a.alarm_actions])
    error_message = "every alarm must notify the given actions"
  }
}

run "dashboard" {
  command = apply

  assert {
    condition = toset(flatten([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
      [for m in try(w.properties.metrics, []) : m[1] if m[0] == "Pickup"]])) == toset(
    ["Backlog", "InFlight", "OldestQueuedAgeSeconds", "Pinned", "DeadLettered", "BytesStored", "Requests", "ApiErrors"])
    error_message = "the dashboard must show every metric pickup publishes"
  }

  assert {
    condition     = length([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : w if w.type == "alarm"]) == 1
    error_message = "the dashboard must show the alarms"
  }
}
