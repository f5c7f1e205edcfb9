# The task definitions: commands, environment, secrets, health checks, the
# admin task, ECS Exec, the generated secrets.
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

# Containers are found by name: the projector task runs views-setup first.
run "fetcher_task" {
  command = apply

  assert {
    condition     = [for c in output.container_definitions["fetcher"] : c.name] == ["fetcher"] && output.container_definitions["fetcher"][0].command == ["fetcher"]
    error_message = "the fetcher service must run `pickup fetcher`, alone in its task"
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
      PICKUP_VIEWS               = "postgres://pickup_app@views.cluster.example:5432/pickup?sslmode=require"
      PICKUP_VIEWS_SECRET_ARN    = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
      PICKUP_ADMIN_ADDR          = ":9464"
      PICKUP_STAGING_BUCKET      = "pickup-test-staging"
      PICKUP_STAGING_PREFIX      = "staging/"
      PICKUP_CARPARK_BUCKET      = "pickup-test-carpark"
      PICKUP_S3_REGION           = "eu-west-1"
      PICKUP_BATCH_SIZE          = "10"
      PICKUP_MAX_CAR_BYTES       = "33285996544"
      PICKUP_FETCH_TIMEOUT       = "4h"
      PICKUP_FETCH_CHUNK_TIMEOUT = "2m"
      PICKUP_LIBP2P_LISTEN       = "/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1"
      PICKUP_LIBP2P_PUBLIC_IP    = "ecs"
    }
    error_message = "the fetcher's environment must carry the buckets, region, limits, timeouts, the views as the app role, and the libp2p listen addresses and public address discovery"
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].secrets == [
      { name = "PICKUP_EVENTLOG", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf" },
      { name = "PICKUP_LIBP2P_SEED", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/libp2p-seed-AbCdEf" },
    ]
    error_message = "the event log and the libp2p seed must come from Secrets Manager through ECS, and nothing else (the views password is read by the process)"
  }

  assert {
    condition     = try(jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].healthCheck, null) == { command = ["CMD", "/ko-app/pickup", "health", "--live"], interval = 30, timeout = 5, retries = 3, startPeriod = 60 }
    error_message = "the fetcher's health check must run `pickup health --live` (its admin server's /healthz: liveness, never readiness), with room to start"
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
    condition     = aws_ecs_task_definition.this["fetcher"].requires_compatibilities == toset(["FARGATE"]) && !aws_ecs_service.fetcher.enable_execute_command
    error_message = "the fetchers must run on Fargate, without ECS Exec unless asked"
  }
}

run "projector_task" {
  command = apply

  variables {
    notify_on_pinned = true
    notify_topic_arn = "arn:aws:sns:eu-west-1:111122223333:pickup-test-pinned"
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name] == ["views-setup", "projector"]
    error_message = "the projector task must run views-setup, then the projector"
  }

  assert {
    condition = ({ for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => [c.command, c.essential] } == {
      views-setup = [["views", "setup"], false]
      projector   = [["projector"], true]
    })
    error_message = "views-setup must run `pickup views setup` and may end; the projector runs `pickup projector` and must not"
  }

  assert {
    condition     = { for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => c }["projector"].dependsOn == [{ containerName = "views-setup", condition = "SUCCESS" }]
    error_message = "the projector must start only once views-setup has succeeded"
  }

  assert {
    condition = ({ for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => c }["views-setup"].secrets == [
      { name = "PICKUP_VIEWS_ADMIN_SECRET", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc" },
      { name = "PICKUP_VIEWS_APP_SECRET", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf" },
    ])
    error_message = "views-setup must be given the master secret and the app role's, through ECS"
  }

  assert {
    condition     = { for e in { for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => c }["views-setup"].environment : e.name => e.value }["PICKUP_VIEWS"] == "postgres://views.cluster.example:5432/pickup?sslmode=require"
    error_message = "views-setup must connect to the cluster's writer"
  }

  assert {
    condition = ({ for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => c }["projector"].secrets == [
      { name = "PICKUP_EVENTLOG", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf" },
      { name = "PICKUP_WEBHOOK_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/webhook-key-AbCdEf" },
    ])
    error_message = "the projector must get the event log and the webhook key from Secrets Manager, and never the master secret"
  }

  assert {
    condition     = try({ for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => c }["projector"].healthCheck, null) == { command = ["CMD", "/ko-app/pickup", "health", "--live"], interval = 30, timeout = 5, retries = 3, startPeriod = 60 }
    error_message = "the projector's health check must run `pickup health --live` (liveness: a projector rebuilding its views is not ready for as long as that takes, and must not be replaced for it)"
  }

  assert {
    condition     = !can({ for c in jsondecode(aws_ecs_task_definition.this["projector"].container_definitions) : c.name => c }["views-setup"].healthCheck)
    error_message = "views-setup runs to its end: it has no admin server to check"
  }

  assert {
    condition = ({ for e in output.container_definitions["projector"][1].environment : e.name => e.value }["PICKUP_MAX_ATTEMPTS"] == "5" &&
    { for e in output.container_definitions["projector"][1].environment : e.name => e.value }["PICKUP_NOTIFY_TOPIC_ARN"] == "arn:aws:sns:eu-west-1:111122223333:pickup-test-pinned")
    error_message = "the projector must get PICKUP_MAX_ATTEMPTS and the notification topic when there is one"
  }

  assert {
    condition     = { for e in output.container_definitions["projector"][1].environment : e.name => e.value }["PICKUP_VIEWS_SECRET_ARN"] == var.views_secret_arn
    error_message = "the projector must connect to the views as the app role"
  }

  assert {
    condition     = aws_ecs_service.projector.desired_count == 1 && aws_ecs_service.projector.deployment_maximum_percent == 100 && aws_ecs_service.projector.deployment_minimum_healthy_percent == 0
    error_message = "exactly one projector may run, even during a deployment"
  }

  assert {
    condition     = aws_ecs_service.projector.wait_for_steady_state
    error_message = "terraform apply must wait for the projector (views-setup done) before it starts the fetchers"
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.task["projector"].policy).Statement == [
      {
        Sid      = "ReadViewsSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"]
      },
      {
        Sid      = "DeleteReleasedRoots"
        Effect   = "Allow"
        Action   = ["s3:DeleteObject"]
        Resource = ["arn:aws:s3:::pickup-test-carpark/*"]
      },
      {
        Sid      = "ListReleasedRoots"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = ["arn:aws:s3:::pickup-test-carpark"]
      },
      {
        Sid      = "NotifyValidatedCars"
        Effect   = "Allow"
        Action   = ["sns:Publish"]
        Resource = ["arn:aws:sns:eu-west-1:111122223333:pickup-test-pinned"]
      },
    ]
    error_message = "a notifying projector may read the app role's secret, list the carpark and delete from it (the garbage collector), and publish to its topic, nothing else"
  }

  assert {
    condition     = { for e in output.container_definitions["projector"][1].environment : e.name => e.value }["PICKUP_CARPARK_BUCKET"] == "pickup-test-carpark"
    error_message = "the projector's garbage collector must be given the carpark bucket, or it deletes from a local directory"
  }

  assert {
    condition = toset(jsondecode(aws_iam_role_policy.execution["projector"].policy).Statement[3].Resource) == toset([
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/webhook-key-AbCdEf",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc",
      "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf",
    ])
    error_message = "the projector's execution role must read exactly the secrets its two containers are given"
  }
}

run "projector_without_topic" {
  command = apply

  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.task["projector"].policy).Statement : s.Sid] == ["ReadViewsSecret", "DeleteReleasedRoots", "ListReleasedRoots"]
    error_message = "a projector that notifies no one needs only the app role's secret and the garbage collector's carpark calls"
  }

  assert {
    condition     = !contains([for e in output.container_definitions["projector"][1].environment : e.name], "PICKUP_NOTIFY_TOPIC_ARN")
    error_message = "PICKUP_NOTIFY_TOPIC_ARN must be unset without a topic"
  }
}

run "admin_task" {
  command = apply

  assert {
    condition = (aws_ecs_task_definition.this["admin"].family == "pickup-test-admin" &&
      [for c in output.container_definitions["admin"] : c.name] == ["admin"] &&
    output.container_definitions["admin"][0].command == ["tokens", "ls"])
    error_message = "the admin task definition must hold one container, admin, whose command run-task overrides"
  }

  assert {
    condition     = output.container_definitions["admin"][0].secrets == [{ name = "PICKUP_EVENTLOG", valueFrom = var.eventlog_secret_arn }]
    error_message = "the admin task must reach the event log (pickup tokens create appends to it)"
  }

  assert {
    condition     = aws_cloudwatch_log_group.this["admin"].retention_in_days == 1 && output.admin_task_definition == "pickup-test-admin"
    error_message = "what the admin task prints (a new token) must be kept a day only"
  }

  assert {
    condition = ({ for e in output.container_definitions["admin"][0].environment : e.name => e.value }["PICKUP_CARPARK_BUCKET"] == "pickup-test-carpark" &&
    !anytrue([for s in jsondecode(aws_iam_role_policy.task["admin"].policy).Statement : contains(s.Action, "s3:DeleteObject")]))
    error_message = "the admin task reaches the carpark for pickup reindex (the bucket set, read and write of indexes), and may delete nothing there"
  }
}

run "ecs_exec" {
  command = apply

  variables {
    enable_execute_command = true
  }

  assert {
    condition     = aws_ecs_service.fetcher.enable_execute_command && aws_ecs_service.projector.enable_execute_command
    error_message = "enable_execute_command must turn ECS Exec on for both services"
  }

  assert {
    condition = alltrue([for t in ["fetcher", "projector"] : contains(jsondecode(aws_iam_role_policy.task[t].policy).Statement, {
      Sid      = "EcsExec"
      Effect   = "Allow"
      Action   = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
      Resource = ["*"]
    })])
    error_message = "ECS Exec needs the SSM agent's channels in the task roles"
  }

  assert {
    condition     = !output.container_definitions["fetcher"][0].readonlyRootFilesystem && !output.container_definitions["projector"][1].readonlyRootFilesystem
    error_message = "the SSM agent of ECS Exec needs a writable root file system"
  }
}

run "generated_secrets" {
  command = apply

  assert {
    condition = (aws_secretsmanager_secret_version.libp2p_seed.secret_string == null && aws_secretsmanager_secret_version.libp2p_seed.secret_string_wo_version == 1 &&
      aws_secretsmanager_secret_version.webhook_key.secret_string == null && aws_secretsmanager_secret_version.webhook_key.secret_string_wo_version == 1 &&
    !aws_ecr_repository.this.force_delete)
    error_message = "the generated keys must be written write-only, once; the repository protected by default"
  }

  assert {
    condition     = alltrue([for d in data.aws_secretsmanager_random_password.this : d.password_length >= 32 && d.exclude_punctuation])
    error_message = "the libp2p seed and the webhook key need at least 32 bytes"
  }
}

run "disposable_repository" {
  command = plan

  variables {
    force_delete                   = true
    secret_recovery_window_in_days = 0
  }

  assert {
    condition     = aws_ecr_repository.this.force_delete && aws_secretsmanager_secret.libp2p_seed.recovery_window_in_days == 0 && aws_secretsmanager_secret.webhook_key.recovery_window_in_days == 0
    error_message = "a disposable deployment's repository must go with its images, and its secrets at once"
  }
}
