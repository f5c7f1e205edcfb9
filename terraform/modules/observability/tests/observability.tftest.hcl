mock_provider "aws" {}

variables {
  name                        = "pickup-test"
  function_name               = "pickup-test-gateway"
  cluster_name                = "pickup-test"
  fetcher_service_name        = "pickup-test-fetcher"
  projector_service_name      = "pickup-test-projector"
  cluster_arn                 = "arn:aws:ecs:eu-west-1:111122223333:cluster/pickup-test"
  views_cluster_identifier    = "pickup-test-views"
  views_proxy_name            = "pickup-test-views"
  views_connections_threshold = 360
  alarm_actions               = ["arn:aws:sns:eu-west-1:111122223333:pickup-test-alarms"]
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

run "views_and_proxy_alarms" {
  command = plan

  assert {
    condition = ({ for k in ["views_cpu", "views_freeable_memory", "views_capacity", "views_connections"] : k => [aws_cloudwatch_metric_alarm.this[k].namespace, aws_cloudwatch_metric_alarm.this[k].metric_name, aws_cloudwatch_metric_alarm.this[k].dimensions, aws_cloudwatch_metric_alarm.this[k].comparison_operator] } == {
      views_cpu             = ["AWS/RDS", "CPUUtilization", tomap({ DBClusterIdentifier = "pickup-test-views" }), "GreaterThanThreshold"]
      views_freeable_memory = ["AWS/RDS", "FreeableMemory", tomap({ DBClusterIdentifier = "pickup-test-views" }), "LessThanThreshold"]
      views_capacity        = ["AWS/RDS", "ACUUtilization", tomap({ DBClusterIdentifier = "pickup-test-views" }), "GreaterThanThreshold"]
      views_connections     = ["AWS/RDS", "DatabaseConnections", tomap({ DBClusterIdentifier = "pickup-test-views" }), "GreaterThanThreshold"]
    })
    error_message = "the views cluster's CPU, freeable memory, capacity near its maximum and connections must raise alarms"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["views_connections"].threshold == 360 && aws_cloudwatch_metric_alarm.this["views_capacity"].threshold == 90
    error_message = "the views alarms must use the given thresholds"
  }

  assert {
    condition = ({ for k in ["proxy_availability", "proxy_client_connections", "proxy_borrow_latency"] : k => [aws_cloudwatch_metric_alarm.this[k].namespace, aws_cloudwatch_metric_alarm.this[k].metric_name, aws_cloudwatch_metric_alarm.this[k].dimensions["ProxyName"], aws_cloudwatch_metric_alarm.this[k].comparison_operator] } == {
      proxy_availability       = ["AWS/RDS", "AvailabilityPercentage", "pickup-test-views", "LessThanThreshold"]
      proxy_client_connections = ["AWS/RDS", "ClientConnections", "pickup-test-views", "GreaterThanThreshold"]
      proxy_borrow_latency     = ["AWS/RDS", "DatabaseConnectionsBorrowLatency", "pickup-test-views", "GreaterThanThreshold"]
    })
    error_message = "the RDS Proxy's availability, client connections and borrow latency must raise alarms"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["proxy_borrow_latency"].threshold == 100000
    error_message = "the borrow latency is published in microseconds"
  }
}

run "task_alarms" {
  command = plan

  assert {
    condition = alltrue([for svc, a in aws_cloudwatch_metric_alarm.tasks_below_desired :
      toset([for q in a.metric_query : [q.metric[0].namespace, q.metric[0].metric_name, q.metric[0].dimensions] if length(q.metric) > 0]) == toset([
        ["ECS/ContainerInsights", "DesiredTaskCount", tomap({ ClusterName = "pickup-test", ServiceName = "pickup-test-${svc}" })],
        ["ECS/ContainerInsights", "RunningTaskCount", tomap({ ClusterName = "pickup-test", ServiceName = "pickup-test-${svc}" })],
      ]) && one([for q in a.metric_query : q.expression if q.return_data]) == "desired - running"
    ]) && length(aws_cloudwatch_metric_alarm.tasks_below_desired) == 2
    error_message = "fewer running tasks than desired, for each service, must raise an alarm"
  }

  assert {
    condition = (jsondecode(aws_cloudwatch_event_rule.task_failures.event_pattern).source == ["aws.ecs"] &&
      jsondecode(aws_cloudwatch_event_rule.task_failures.event_pattern)["detail-type"] == ["ECS Task State Change"] &&
      jsondecode(aws_cloudwatch_event_rule.task_failures.event_pattern).detail.clusterArn == ["arn:aws:ecs:eu-west-1:111122223333:cluster/pickup-test"] &&
      jsondecode(aws_cloudwatch_event_rule.task_failures.event_pattern).detail.lastStatus == ["STOPPED"] &&
    contains(jsondecode(aws_cloudwatch_event_rule.task_failures.event_pattern).detail["$or"], { stopCode = ["TaskFailedToStart", "EssentialContainerExited"] }))
    error_message = "every service task of the cluster that stops on a failure must be caught"
  }

  assert {
    condition     = [for t in aws_cloudwatch_event_target.task_failures : t.arn] == ["arn:aws:sns:eu-west-1:111122223333:pickup-test-alarms"] && aws_cloudwatch_event_target.task_failures[0].rule == aws_cloudwatch_event_rule.task_failures.name
    error_message = "failed tasks must be told to the alarm actions"
  }
}

run "serve_service_alarmed" {
  command = plan

  variables {
    serve_service_name = "pickup-test-serve"
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.tasks_below_desired)) == toset(["fetcher", "projector", "serve"]) && aws_cloudwatch_metric_alarm.tasks_below_desired["serve"].alarm_name == "pickup-test-serve-tasks-below-desired"
    error_message = "the serve service, when there is one, must be alarmed on as the others when it runs fewer tasks than desired"
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
