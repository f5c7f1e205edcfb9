# Alarms and a dashboard over the metrics pickup publishes as CloudWatch
# embedded metric format (namespace Pickup, dimension Deployment): the
# projector's Backlog, InFlight, OldestQueuedAgeSeconds, DeadLettered, Pinned
# and BytesStored, the gateway's Requests and ApiErrors; over AWS's own
# Lambda, ECS (Container Insights), Aurora and RDS Proxy metrics; and an
# EventBridge rule telling the alarm actions of every service task that
# failed (to start, or its process exited, or its health check).

data "aws_region" "current" {}

locals {
  deployment = { Deployment = var.name }
  cluster    = { DBClusterIdentifier = var.views_cluster_identifier }
  proxy      = { ProxyName = var.views_proxy_name }

  # Every alarm compares GreaterThanThreshold unless it says otherwise.
  alarms = { for k, a in local.alarm_specs : k => merge({ comparison = "GreaterThanThreshold" }, a) }

  alarm_specs = {
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
      comparison  = "LessThanThreshold"
    }
    # Aurora Serverless v2: an idle dev cluster pauses and publishes
    # nothing, so missing data is no alarm.
    views_cpu = {
      description = "The views cluster's CPU has been above ${var.views_cpu_threshold} % for 15 minutes: raise views_max_capacity, or look for a runaway query."
      namespace   = "AWS/RDS"
      metric      = "CPUUtilization"
      dimensions  = local.cluster
      statistic   = "Average"
      period      = 300
      evaluations = 3
      threshold   = var.views_cpu_threshold
      missing     = "notBreaching"
    }
    views_freeable_memory = {
      description = "The views cluster has had less than ${floor(var.views_freeable_memory_threshold_bytes / 1048576)} MiB of freeable memory for 15 minutes."
      namespace   = "AWS/RDS"
      metric      = "FreeableMemory"
      dimensions  = local.cluster
      statistic   = "Minimum"
      period      = 300
      evaluations = 3
      threshold   = var.views_freeable_memory_threshold_bytes
      missing     = "notBreaching"
      comparison  = "LessThanThreshold"
    }
    # ACUUtilization is the capacity in use as a percentage of the
    # cluster's maximum.
    views_capacity = {
      description = "The views cluster has run above ${var.views_capacity_threshold_percent} % of its most capacity units for 15 minutes: raise views_max_capacity."
      namespace   = "AWS/RDS"
      metric      = "ACUUtilization"
      dimensions  = local.cluster
      statistic   = "Maximum"
      period      = 300
      evaluations = 3
      threshold   = var.views_capacity_threshold_percent
      missing     = "notBreaching"
    }
    views_connections = {
      description = "The views cluster holds more than ${var.views_connections_threshold} connections, near its max_connections."
      namespace   = "AWS/RDS"
      metric      = "DatabaseConnections"
      dimensions  = local.cluster
      statistic   = "Maximum"
      period      = 300
      evaluations = 2
      threshold   = var.views_connections_threshold
      missing     = "notBreaching"
    }
    proxy_availability = {
      description = "The views' RDS Proxy has not reached the cluster's writer all the time for 10 minutes: the gateway cannot read the views."
      namespace   = "AWS/RDS"
      metric      = "AvailabilityPercentage"
      dimensions  = merge(local.proxy, { TargetGroup = "default", TargetRole = "READ_WRITE" })
      statistic   = "Average"
      period      = 300
      evaluations = 2
      threshold   = 100
      missing     = "notBreaching"
      comparison  = "LessThanThreshold"
    }
    proxy_client_connections = {
      description = "The views' RDS Proxy holds more than ${var.proxy_client_connections_threshold} client connections: lower gateway_reserved_concurrency or look for leaks."
      namespace   = "AWS/RDS"
      metric      = "ClientConnections"
      dimensions  = local.proxy
      statistic   = "Maximum"
      period      = 300
      evaluations = 2
      threshold   = var.proxy_client_connections_threshold
      missing     = "notBreaching"
    }
    # In microseconds.
    proxy_borrow_latency = {
      description = "Borrowing a database connection from the views' RDS Proxy has taken more than ${var.proxy_borrow_latency_threshold_ms} ms on average for 15 minutes: the pool is exhausted."
      namespace   = "AWS/RDS"
      metric      = "DatabaseConnectionsBorrowLatency"
      dimensions  = local.proxy
      statistic   = "Average"
      period      = 300
      evaluations = 3
      threshold   = var.proxy_borrow_latency_threshold_ms * 1000
      missing     = "notBreaching"
    }
  }

  pickup = ["Pickup", "Deployment", var.name]
  lambda = ["AWS/Lambda", "FunctionName", var.function_name]
  services = merge({
    fetcher   = ["ClusterName", var.cluster_name, "ServiceName", var.fetcher_service_name]
    projector = ["ClusterName", var.cluster_name, "ServiceName", var.projector_service_name]
    }, var.serve_service_name == null ? {} : {
    serve = ["ClusterName", var.cluster_name, "ServiceName", var.serve_service_name]
  })

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
  comparison_operator = each.value.comparison
  treat_missing_data  = each.value.missing
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

# Fewer tasks running than the service wants, for 15 minutes: tasks that
# cannot start (image, secrets, views-setup) or keep failing their health
# checks. Container Insights' DesiredTaskCount and RunningTaskCount.
resource "aws_cloudwatch_metric_alarm" "tasks_below_desired" {
  for_each = local.services

  alarm_name          = "${var.name}-${each.key}-tasks-below-desired"
  alarm_description   = "Fewer ${each.key} tasks have run than desired for 15 minutes: see the stopped tasks' reasons (aws ecs describe-tasks) and the ${var.name}-task-failures notifications."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "missing"
    expression  = "desired - running"
    label       = "Tasks missing"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { desired = "DesiredTaskCount", running = "RunningTaskCount" }

    content {
      id          = metric_query.key
      return_data = false

      metric {
        namespace   = "ECS/ContainerInsights"
        metric_name = metric_query.value
        dimensions  = { ClusterName = each.value[1], ServiceName = each.value[3] }
        stat        = "Average"
        period      = 300
      }
    }
  }

  tags = var.tags
}

# Every service task that stops failing: it could not start (image, secrets,
# a views-setup that failed), its process exited, or its health check
# failed. Stops the scheduler asks for (scale-in, deployments) are not
# failures; nor is a one-off run-task's end (group family:..., not
# service:...).
resource "aws_cloudwatch_event_rule" "task_failures" {
  name        = "${var.name}-task-failures"
  description = "pickup ${var.name}: a service task of the ECS cluster stopped on a failure."
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [var.cluster_arn]
      lastStatus = ["STOPPED"]
      group      = [{ prefix = "service:" }]
      "$or" = [
        { stopCode = ["TaskFailedToStart", "EssentialContainerExited"] },
        { stoppedReason = [{ prefix = "Task failed container health checks" }] },
      ]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "task_failures" {
  count = length(var.alarm_actions)

  rule = aws_cloudwatch_event_rule.task_failures.name
  arn  = var.alarm_actions[count.index]

  input_transformer {
    input_paths = {
      group  = "$.detail.group"
      task   = "$.detail.taskArn"
      code   = "$.detail.stopCode"
      reason = "$.detail.stoppedReason"
    }
    input_template = "\"pickup ${var.name}: task <task> of <group> stopped (<code>): <reason>\""
  }
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
          alarms = concat([for a in aws_cloudwatch_metric_alarm.this : a.arn], [for a in aws_cloudwatch_metric_alarm.tasks_below_desired : a.arn])
        }
      }],
    )
  })
}
