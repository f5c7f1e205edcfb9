# Alarms and a dashboard over the metrics pickup publishes as CloudWatch
# embedded metric format (namespace Pickup, dimension Deployment): the
# projector's Backlog, InFlight, OldestQueuedAgeSeconds, DeadLettered, Pinned
# and BytesStored, the gateway's Requests and ApiErrors; and over AWS's own
# Lambda and ECS metrics.

data "aws_region" "current" {}

locals {
  deployment = { Deployment = var.name }

  alarms = {
    dead_letters = {
      description = "Pins were dead-lettered: they failed every attempt. Replay their streams to see why."
      namespace   = "Pickup"
      metric      = "DeadLettered"
      dimensions  = local.deployment
      statistic   = "Sum"
      period      = 300
      evaluations = 1
      threshold   = 0
      missing     = "notBreaching"
    }
    oldest_queued_age = {
      description = "A queued pin has waited longer than ${var.oldest_queued_age_threshold_seconds} s: the fetchers are not keeping up, or not running."
      namespace   = "Pickup"
      metric      = "OldestQueuedAgeSeconds"
      dimensions  = local.deployment
      statistic   = "Maximum"
      period      = 60
      evaluations = 5
      threshold   = var.oldest_queued_age_threshold_seconds
      missing     = "notBreaching"
    }
    api_errors = {
      description = "The API answered more than ${var.api_errors_threshold} errors (5xx) in five minutes."
      namespace   = "Pickup"
      metric      = "ApiErrors"
      dimensions  = local.deployment
      statistic   = "Sum"
      period      = 300
      evaluations = 1
      threshold   = var.api_errors_threshold
      missing     = "notBreaching"
    }
    lambda_errors = {
      description = "The gateway Lambda failed (crashed or timed out) more than ${var.lambda_errors_threshold} times in five minutes."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = var.function_name }
      statistic   = "Sum"
      period      = 300
      evaluations = 1
      threshold   = var.lambda_errors_threshold
      missing     = "notBreaching"
    }
    # The projector publishes Backlog every minute: silence means it is down,
    # and with it retries, dead letters and the other alarms.
    projector_silent = {
      description = "The projector has published no Backlog for ten minutes: it is not running."
      namespace   = "Pickup"
      metric      = "Backlog"
      dimensions  = local.deployment
      statistic   = "SampleCount"
      period      = 600
      evaluations = 1
      threshold   = 1
      missing     = "breaching"
    }
  }

  pickup = ["Pickup", "Deployment", var.name]
  lambda = ["AWS/Lambda", "FunctionName", var.function_name]
  services = {
    fetcher   = ["ClusterName", var.cluster_name, "ServiceName", var.fetcher_service_name]
    projector = ["ClusterName", var.cluster_name, "ServiceName", var.projector_service_name]
  }

  # Every line spelled out (no "." shorthand), so that the body reads alone.
  metric_widgets = [
    { title = "Queue", stat = "Maximum", metrics = [
      [local.pickup[0], "Backlog", local.pickup[1], local.pickup[2]],
      [local.pickup[0], "InFlight", local.pickup[1], local.pickup[2]],
    ] },
    { title = "Oldest queued pin (s)", stat = "Maximum", metrics = [
      [local.pickup[0], "OldestQueuedAgeSeconds", local.pickup[1], local.pickup[2]],
    ] },
    { title = "Pinned and dead-lettered", stat = "Sum", metrics = [
      [local.pickup[0], "Pinned", local.pickup[1], local.pickup[2]],
      [local.pickup[0], "DeadLettered", local.pickup[1], local.pickup[2]],
    ] },
    { title = "Bytes stored", stat = "Sum", metrics = [
      [local.pickup[0], "BytesStored", local.pickup[1], local.pickup[2]],
    ] },
    { title = "API requests and errors", stat = "Sum", metrics = [
      [local.pickup[0], "Requests", local.pickup[1], local.pickup[2]],
      [local.pickup[0], "ApiErrors", local.pickup[1], local.pickup[2]],
    ] },
    { title = "Gateway Lambda", stat = "Sum", metrics = [
      [local.lambda[0], "Errors", local.lambda[1], local.lambda[2]],
      [local.lambda[0], "Throttles", local.lambda[1], local.lambda[2]],
    ] },
    { title = "Gateway duration (ms)", stat = "p99", metrics = [
      [local.lambda[0], "Duration", local.lambda[1], local.lambda[2]],
    ] },
    { title = "Running tasks", stat = "Average", metrics = [
      for svc in values(local.services) : concat(["ECS/ContainerInsights", "RunningTaskCount"], svc)
    ] },
    { title = "Task CPU (%)", stat = "Average", metrics = [
      for svc in values(local.services) : concat(["AWS/ECS", "CPUUtilization"], svc)
    ] },
    { title = "Task memory (%)", stat = "Average", metrics = [
      for svc in values(local.services) : concat(["AWS/ECS", "MemoryUtilization"], svc)
    ] },
  ]
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluations
  threshold           = each.value.threshold
  comparison_operator = each.key == "projector_silent" ? "LessThanThreshold" : "GreaterThanThreshold"
  treat_missing_data  = each.value.missing
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(
      [for i, w in local.metric_widgets : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = w.title
          region  = data.aws_region.current.region
          metrics = w.metrics
          stat    = w.stat
          period  = 60
          view    = "timeSeries"
        }
      }],
      [{
        type   = "alarm"
        x      = 0
        y      = ceil(length(local.metric_widgets) / 2) * 6
        width  = 24
        height = 4
        properties = {
          title  = "Alarms"
          alarms = [for a in aws_cloudwatch_metric_alarm.this : a.arn]
        }
      }],
    )
  })
}
