# Alarms on the load balancer's own metrics (AWS/ApplicationELB): errors
# the tasks answer (a corrupt stored block is a 5xx by design), errors the
# load balancer answers itself (no healthy task: 502, 503, 504), and tasks
# failing the /healthz check. Fewer tasks than desired is the
# observability module's alarm, as for the other services.

locals {
  lb = { LoadBalancer = aws_lb.this.arn_suffix }

  alarms = {
    target-5xx = {
      description = "pickup serve answered more than ${var.server_errors_threshold} errors (5xx) in five minutes: see its log for corrupt stored blocks, the views or the event log."
      metric      = "HTTPCode_Target_5XX_Count"
      dimensions  = local.lb
      statistic   = "Sum"
      period      = 300
      evaluations = 1
      threshold   = var.server_errors_threshold
    }
    lb-5xx = {
      description = "The serve load balancer answered more than ${var.server_errors_threshold} errors (5xx) itself in five minutes: no healthy task, or tasks too slow."
      metric      = "HTTPCode_ELB_5XX_Count"
      dimensions  = local.lb
      statistic   = "Sum"
      period      = 300
      evaluations = 1
      threshold   = var.server_errors_threshold
    }
    unhealthy-hosts = {
      description = "A serve task has failed the load balancer's /healthz check for five minutes."
      metric      = "UnHealthyHostCount"
      dimensions  = merge(local.lb, { TargetGroup = aws_lb_target_group.this.arn_suffix })
      statistic   = "Maximum"
      period      = 60
      evaluations = 5
      threshold   = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-serve-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluations
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  # No requests, no data: no alarm.
  treat_missing_data = "notBreaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions

  tags = var.tags
}
