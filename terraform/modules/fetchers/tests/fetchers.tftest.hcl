mock_provider "aws" {
  override_data {
    target = data.aws_region.current
    values = { region = "eu-west-1" }
  }

  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }

  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "111122223333" }
  }

  mock_resource "aws_ecr_repository" {
    defaults = {
      arn            = "arn:aws:ecr:eu-west-1:111122223333:repository/pickup-test"
      repository_url = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/pickup-test"
    }
  }

  mock_resource "aws_ecs_cluster" {
    defaults = {
      arn = "arn:aws:ecs:eu-west-1:111122223333:cluster/pickup-test"
    }
  }
}

variables {
  name                = "pickup-test"
  vpc_id              = "vpc-1"
  subnet_ids          = ["subnet-a", "subnet-b"]
  image_tag           = "v1.2.3"
  eventlog_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf"
  views_url           = "postgres://pickup@views.cluster.example:5432/pickup?sslmode=require"
  views_secret_arn    = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc"
  staging_bucket      = "pickup-test-staging"
  staging_bucket_arn  = "arn:aws:s3:::pickup-test-staging"
  staging_prefix      = "staging/"
  carpark_bucket      = "pickup-test-carpark"
  carpark_bucket_arn  = "arn:aws:s3:::pickup-test-carpark"
}

run "fetcher_task" {
  command = apply

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].command == ["fetcher"]
    error_message = "the fetcher service must run `pickup fetcher`"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].image == "111122223333.dkr.ecr.eu-west-1.amazonaws.com/pickup-test:v1.2.3"
    error_message = "the fetcher must run the given tag of the module's own image"
  }

  assert {
    condition = { for e in jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].environment : e.name => e.value } == {
      PICKUP_DEPLOYMENT          = "pickup-test"
      PICKUP_EMF                 = "true"
      PICKUP_LOG_LEVEL           = "info"
      PICKUP_VIEWS               = "postgres://pickup@views.cluster.example:5432/pickup?sslmode=require"
      PICKUP_ADMIN_ADDR          = ":9464"
      PICKUP_STAGING_BUCKET      = "pickup-test-staging"
      PICKUP_STAGING_PREFIX      = "staging/"
      PICKUP_CARPARK_BUCKET      = "pickup-test-carpark"
      PICKUP_S3_REGION           = "eu-west-1"
      PICKUP_BATCH_SIZE          = "10"
      PICKUP_MAX_CAR_BYTES       = "33285996544"
      PICKUP_FETCH_TIMEOUT       = "4h"
      PICKUP_FETCH_CHUNK_TIMEOUT = "2m"
    }
    error_message = "the fetcher's environment must carry the buckets, region, limits and timeouts"
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].secrets == [
      { name = "PICKUP_EVENTLOG", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf" },
      { name = "PGPASSWORD", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc:password::" },
    ]
    error_message = "the event log and the views password must come from Secrets Manager through ECS"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].logConfiguration.options["awslogs-group"] == "/ecs/pickup-test/fetcher" && aws_cloudwatch_log_group.this["fetcher"].retention_in_days == 30
    error_message = "the fetcher must log to its own log group, with retention"
  }

  assert {
    condition = (jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].readonlyRootFilesystem &&
      jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].mountPoints == [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }] &&
    [for v in aws_ecs_task_definition.this["fetcher"].volume : v.name] == ["tmp"])
    error_message = "the image must be read-only, with a writable /tmp on the task's storage"
  }

  assert {
    condition     = aws_ecs_task_definition.this["fetcher"].requires_compatibilities == toset(["FARGATE"]) && one(aws_ecs_service.fetcher.network_configuration).assign_public_ip == false
    error_message = "the fetchers must run on Fargate in private subnets"
  }
}

run "projector_task" {
  command = apply

  variables {
    notify_on_pinned = true
    notify_topic_arn = "arn:aws:sns:eu-west-1:111122223333:pickup-test-pinned"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["projector"].container_definitions)[0].command == ["projector"]
    error_message = "the projector service must run `pickup projector`"
  }

  assert {
    condition     = { for e in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions)[0].environment : e.name => e.value }["PICKUP_MAX_ATTEMPTS"] == "5"
    error_message = "the projector must get PICKUP_MAX_ATTEMPTS"
  }

  assert {
    condition     = { for e in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions)[0].environment : e.name => e.value }["PICKUP_NOTIFY_TOPIC_ARN"] == "arn:aws:sns:eu-west-1:111122223333:pickup-test-pinned"
    error_message = "the projector must get the notification topic when there is one"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this["projector"].container_definitions)[0].secrets == jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].secrets
    error_message = "the projector must connect to the same stores as the fetchers"
  }

  assert {
    condition     = aws_ecs_service.projector.desired_count == 1 && aws_ecs_service.projector.deployment_maximum_percent == 100 && aws_ecs_service.projector.deployment_minimum_healthy_percent == 0
    error_message = "exactly one projector may run, even during a deployment"
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.task["projector"].policy).Statement == [{
      Sid      = "NotifyValidatedCars"
      Effect   = "Allow"
      Action   = ["sns:Publish"]
      Resource = ["arn:aws:sns:eu-west-1:111122223333:pickup-test-pinned"]
    }]
    error_message = "a notifying projector may publish to its topic and nothing else"
  }
}

run "projector_without_topic_has_no_permissions" {
  command = apply

  assert {
    condition     = !contains(keys(aws_iam_role_policy.task), "projector")
    error_message = "a projector that notifies no one needs no AWS permission"
  }

  assert {
    condition     = !contains([for e in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions)[0].environment : e.name], "PICKUP_NOTIFY_TOPIC_ARN")
    error_message = "PICKUP_NOTIFY_TOPIC_ARN must be unset without a topic"
  }
}

run "fetcher_permissions_name_their_resources" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.task["fetcher"].policy).Statement == [
      {
        Sid      = "StageCars"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
        Resource = ["arn:aws:s3:::pickup-test-staging/staging/*"]
      },
      {
        Sid      = "ParkCars"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObjectTagging", "s3:GetObjectTagging"]
        Resource = ["arn:aws:s3:::pickup-test-carpark/*"]
      },
      {
        Sid      = "ListCarpark"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
        Resource = ["arn:aws:s3:::pickup-test-carpark"]
      },
      {
        Sid      = "ListStaging"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
        Resource = ["arn:aws:s3:::pickup-test-staging"]
      },
      {
        Sid      = "ProtectOwnTask"
        Effect   = "Allow"
        Action   = ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"]
        Resource = ["arn:aws:ecs:eu-west-1:111122223333:task/pickup-test/*"]
      },
    ]
    error_message = "the fetcher's role must be scoped to the staging prefix, the carpark and its own cluster's tasks"
  }

  assert {
    condition = alltrue(flatten([for p in concat(values(aws_iam_role_policy.task), values(aws_iam_role_policy.execution)) :
    [for s in jsondecode(p.policy).Statement : [for a in s.Action : !strcontains(a, "*")]]]))
    error_message = "no policy may grant wildcard actions"
  }

  assert {
    condition = alltrue(flatten([for p in concat(values(aws_iam_role_policy.task), values(aws_iam_role_policy.execution)) :
    [for s in jsondecode(p.policy).Statement : s.Resource != ["*"] || s.Action == ["ecr:GetAuthorizationToken"]]]))
    error_message = "only the ECR login, which ECR cannot scope, may apply to every resource"
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.execution["fetcher"].policy).Statement[2].Resource == ["${aws_cloudwatch_log_group.this["fetcher"].arn}:*"] && jsondecode(aws_iam_role_policy.execution["projector"].policy).Statement[2].Resource == ["${aws_cloudwatch_log_group.this["projector"].arn}:*"]
    error_message = "each service may write to its own log group only"
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.execution["fetcher"].policy).Statement[3].Resource == [var.eventlog_secret_arn, var.views_secret_arn]
    error_message = "ECS may read exactly the two secrets it injects"
  }
}

run "autoscaling_on_backlog" {
  command = apply

  variables {
    fetcher_min_count = 2
    fetcher_max_count = 40
    backlog_per_task  = 15
  }

  assert {
    condition     = aws_appautoscaling_target.fetcher.min_capacity == 2 && aws_appautoscaling_target.fetcher.max_capacity == 40
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
    condition = one([for m in one(one(aws_appautoscaling_policy.fetcher_backlog.target_tracking_scaling_policy_configuration).customized_metric_specification).metrics :
    m if m.return_data]).expression == "backlog / tasks"
    error_message = "autoscaling must track the backlog per running task"
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
