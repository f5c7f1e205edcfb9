# Autoscaling on the backlog per running fetcher.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                   = "pickup-test"
  vpc_id                 = "vpc-1"
  subnet_ids             = ["subnet-a", "subnet-b"]
  image_tag              = "v1.2.3"
  eventlog_secret_arn    = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf"
  public_subnet_ids      = ["subnet-public-a", "subnet-public-b"]
  views_url              = "postgres://pickup_app@views.cluster.example:5432/pickup?sslmode=require"
  views_secret_arn       = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
  views_admin_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc"
  views_setup_url        = "postgres://views.cluster.example:5432/pickup?sslmode=require"
  staging_bucket         = "pickup-test-staging"
  staging_bucket_arn     = "arn:aws:s3:::pickup-test-staging"
  staging_prefix         = "staging/"
  carpark_bucket         = "pickup-test-carpark"
  carpark_bucket_arn     = "arn:aws:s3:::pickup-test-carpark"
}

run "autoscaling_on_backlog" {
  command = apply

  variables {
    fetcher_min_count = 2
    fetcher_max_count = 20
    backlog_per_task  = 15
  }

  assert {
    condition     = aws_appautoscaling_target.fetcher.min_capacity == 2 && aws_appautoscaling_target.fetcher.max_capacity == 20
    error_message = "autoscaling must keep the fetchers between the given bounds"
  }

  assert {
    condition     = aws_appautoscaling_target.fetcher.resource_id == "service/pickup-test/pickup-test-fetcher"
    error_message = "autoscaling must scale the fetcher service"
  }

  assert {
    condition     = one(aws_appautoscaling_policy.fetcher_backlog.target_tracking_scaling_policy_configuration).target_value == 15
    error_message = "autoscaling must aim at the given backlog per task"
  }

  assert {
    condition = anytrue([for metric in flatten([for m in one(one(aws_appautoscaling_policy.fetcher_backlog.target_tracking_scaling_policy_configuration).customized_metric_specification).metrics : [for st in m.metric_stat : st.metric]]) :
    metric.namespace == "Pickup" && metric.metric_name == "Backlog" && metric.dimensions == toset([{ name = "Deployment", value = "pickup-test" }])])
    error_message = "autoscaling must follow the Backlog metric of this deployment"
  }

  assert {
    condition = [for m in one(one(aws_appautoscaling_policy.fetcher_backlog.target_tracking_scaling_policy_configuration).customized_metric_specification).metrics :
      [for st in m.metric_stat : [st.metric[0].namespace, st.metric[0].metric_name, st.metric[0].dimensions]] if m.id == "tasks"] == [[[
        "ECS/ContainerInsights", "RunningTaskCount",
        toset([{ name = "ClusterName", value = "pickup-test" }, { name = "ServiceName", value = "pickup-test-fetcher" }]),
    ]]]
    error_message = "autoscaling must divide by Container Insights' RunningTaskCount (namespace ECS/ContainerInsights) of the fetcher service"
  }

  assert {
    condition = one([for m in one(one(aws_appautoscaling_policy.fetcher_backlog.target_tracking_scaling_policy_configuration).customized_metric_specification).metrics :
    m if m.return_data]).expression == "backlog / tasks"
    error_message = "autoscaling must track the backlog per running task"
  }

  assert {
    condition     = contains([for st in aws_ecs_cluster.this.setting : st.value if st.name == "containerInsights"], "enabled") || contains([for st in aws_ecs_cluster.this.setting : st.value if st.name == "containerInsights"], "enhanced")
    error_message = "Container Insights must be on: autoscaling divides by its RunningTaskCount"
  }
}

# The service was created by the run before with fetcher_min_count = 2:
# once it exists, autoscaling owns the count, and a new plan must not reset
# it to the new minimum.
run "autoscaling_owns_the_count" {
  command = plan

  variables {
    fetcher_min_count = 3
    fetcher_max_count = 20
  }

  assert {
    condition     = aws_ecs_service.fetcher.desired_count == 2
    error_message = "a new plan must leave the fetchers' desired count to autoscaling (ignore_changes = [desired_count])"
  }
}

run "bounds_must_be_ordered" {
  command = plan

  variables {
    fetcher_min_count = 5
    fetcher_max_count = 2
  }

  expect_failures = [var.fetcher_max_count]
}

run "at_most_twenty_fetchers" {
  command = plan

  variables {
    fetcher_max_count = 21
  }

  expect_failures = [var.fetcher_max_count]
}
