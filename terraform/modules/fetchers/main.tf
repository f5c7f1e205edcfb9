# The Fargate side: an ECR repository for the pickup image, an ECS cluster,
# the fetchers (`pickup fetcher`) scaled on the backlog the projector
# publishes, the projector (`pickup projector`, after `pickup views setup`),
# one task, never two, and a one-off admin task definition. Security groups
# are in network.tf, generated secrets in secrets.tf, IAM in iam.tf.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region    = data.aws_region.current.region
  s3_region = coalesce(var.s3_region, local.region)
  image     = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

  # Where the binary is in the image ko builds (scripts/build-image.sh).
  binary = "/ko-app/pickup"

  # Every role connects to the views as the application role: the URL names
  # host, port, database and user, the password is read from the app role's
  # secret by the process itself (task role), again for each new connection,
  # so that a changed password is picked up without a restart.
  # A PostgreSQL event log is reached the same way, as its own app role:
  # PICKUP_EVENTLOG names the writer (never a proxy: the subscribers'
  # LISTEN connection would pin it), PICKUP_EVENTLOG_SECRET_ARN the app
  # role's secret, read by the process. An EventStoreDB log's connection
  # string is injected by ECS instead (secrets, below).
  postgres_log = var.eventlog_url != null
  common_environment = merge({
    PICKUP_DEPLOYMENT       = var.name
    PICKUP_EMF              = "true"
    PICKUP_LOG_LEVEL        = var.log_level
    PICKUP_VIEWS            = var.views_url
    PICKUP_VIEWS_SECRET_ARN = var.views_secret_arn
    PICKUP_ADMIN_ADDR       = ":${local.admin_port}"
    }, local.postgres_log ? {
    PICKUP_EVENTLOG            = var.eventlog_url
    PICKUP_EVENTLOG_SECRET_ARN = var.eventlog_secret_arn
  } : {})

  admin_port  = 9464
  libp2p_port = 4001

  # Later keys win: the extra settings cannot undo the wiring.
  fetcher_environment = merge(var.fetcher_environment, local.common_environment, {
    PICKUP_STAGING_BUCKET      = var.staging_bucket
    PICKUP_STAGING_PREFIX      = var.staging_prefix
    PICKUP_CARPARK_BUCKET      = var.carpark_bucket
    PICKUP_S3_REGION           = local.s3_region
    PICKUP_BATCH_SIZE          = tostring(var.batch_size)
    PICKUP_MAX_CAR_BYTES       = format("%d", var.max_car_bytes)
    PICKUP_FETCH_TIMEOUT       = var.fetch_timeout
    PICKUP_FETCH_CHUNK_TIMEOUT = var.fetch_chunk_timeout
    PICKUP_LIBP2P_LISTEN       = "/ip4/0.0.0.0/tcp/${local.libp2p_port},/ip4/0.0.0.0/udp/${local.libp2p_port}/quic-v1"
    }, var.uploads_bucket != null ? {
    # The CAR uploads the gateway received, read by the upload source,
    # deleted once their pin is over, swept at start.
    PICKUP_UPLOADS_BUCKET = var.uploads_bucket
    PICKUP_UPLOADS_PREFIX = var.uploads_prefix
    } : {}, var.fetchers_public ? {
    # The task's public IPv4 (ECS task metadata, then the network
    # interface's association), announced with the listen ports.
    PICKUP_LIBP2P_PUBLIC_IP = "ecs"
  } : {})

  # The projector's garbage collector deletes released roots' CARs,
  # indexes and mappings from the carpark.
  projector_environment = merge(
    var.projector_environment,
    local.common_environment,
    {
      PICKUP_MAX_ATTEMPTS   = tostring(var.max_attempts)
      PICKUP_CARPARK_BUCKET = var.carpark_bucket
      PICKUP_S3_REGION      = local.s3_region
    },
    var.notify_on_pinned ? { PICKUP_NOTIFY_TOPIC_ARN = var.notify_topic_arn } : {},
  )

  # The one-off admin task (`aws ecs run-task` with a command override, see
  # terraform/README.md): the stores, no services of its own.
  # The carpark for `pickup reindex`, which indexes CARs stored before
  # indexes were.
  admin_environment = merge(local.common_environment, {
    PICKUP_LOG_LEVEL      = "warn"
    PICKUP_CARPARK_BUCKET = var.carpark_bucket
    PICKUP_S3_REGION      = local.s3_region
  })

  # What ECS injects from Secrets Manager (execution role), by container.
  # Only the event log's connection string and keys that never change while
  # a process runs: the views' password is read by the process itself.
  injected_eventlog = local.postgres_log ? {} : { PICKUP_EVENTLOG = var.eventlog_secret_arn }
  secrets = merge({
    fetcher = merge(local.injected_eventlog, {
      PICKUP_LIBP2P_SEED = aws_secretsmanager_secret.libp2p_seed.arn
    })
    projector = merge(local.injected_eventlog, {
      PICKUP_WEBHOOK_KEY = aws_secretsmanager_secret.webhook_key.arn
    })
    # `pickup views setup` alone holds the master password, and only for
    # as long as it runs.
    views-setup = {
      PICKUP_VIEWS_ADMIN_SECRET = var.views_admin_secret_arn
      PICKUP_VIEWS_APP_SECRET   = var.views_secret_arn
    }
    admin = local.injected_eventlog
    }, local.postgres_log ? {
    # So does `pickup events setup` the event log's.
    events-setup = {
      PICKUP_EVENTLOG_ADMIN_SECRET = var.eventlog_admin_secret_arn
      PICKUP_EVENTLOG_APP_SECRET   = var.eventlog_secret_arn
    }
  } : {})

  # With a PostgreSQL log, `pickup events setup` runs first: the log's
  # schema and app role exist before views-setup and the projector start.
  events_setup = local.postgres_log ? [{
    name         = "events-setup"
    command      = ["events", "setup"]
    essential    = false
    environment  = { PICKUP_EVENTLOG = var.eventlog_setup_url, PICKUP_LOG_LEVEL = var.log_level }
    secrets      = lookup(local.secrets, "events-setup", {})
    health       = null
    ports        = []
    depends_on   = []
    stop_timeout = 30
  }] : []
  after_events_setup = [for c in local.events_setup : { containerName = c.name, condition = "SUCCESS" }]

  # `pickup health --live` asks the process's own admin server whether it
  # serves (/healthz on PICKUP_ADMIN_ADDR): a task whose process hangs or
  # stops serving is replaced. Not readiness (/readyz): a fetcher waiting
  # out an outage of the event log or the views is not ready, yet replacing
  # it would cut its fetches short, and a projector rebuilding a new views
  # version is not ready for as long as that takes. startPeriod leaves room
  # to start.
  health_check = {
    for role in ["fetcher", "projector"] : role => {
      command     = ["CMD", local.binary, "health", "--live"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
  }

  # The task definitions, by task: each a list of containers.
  tasks = {
    fetcher = {
      cpu    = var.fetcher_cpu
      memory = var.fetcher_memory
      containers = [{
        name         = "fetcher"
        command      = ["fetcher"]
        essential    = true
        environment  = local.fetcher_environment
        secrets      = local.secrets["fetcher"]
        health       = local.health_check["fetcher"]
        ports        = [{ name = "admin", port = local.admin_port, protocol = "tcp" }, { name = "libp2p-tcp", port = local.libp2p_port, protocol = "tcp" }, { name = "libp2p-udp", port = local.libp2p_port, protocol = "udp" }]
        depends_on   = []
        stop_timeout = 120
      }]
    }
    projector = {
      cpu    = var.projector_cpu
      memory = var.projector_memory
      containers = concat(local.events_setup, [
        {
          # Runs to completion before the projector starts: creates this
          # version's views schema beside the others and the app role.
          name         = "views-setup"
          command      = ["views", "setup"]
          essential    = false
          environment  = { PICKUP_VIEWS = var.views_setup_url, PICKUP_LOG_LEVEL = var.log_level }
          secrets      = local.secrets["views-setup"]
          health       = null
          ports        = []
          depends_on   = local.after_events_setup
          stop_timeout = 30
        },
        {
          name         = "projector"
          command      = ["projector"]
          essential    = true
          environment  = local.projector_environment
          secrets      = local.secrets["projector"]
          health       = local.health_check["projector"]
          ports        = [{ name = "admin", port = local.admin_port, protocol = "tcp" }]
          depends_on   = concat(local.after_events_setup, [{ containerName = "views-setup", condition = "SUCCESS" }])
          stop_timeout = 120
        },
      ])
    }
    admin = {
      cpu    = 256
      memory = 512
      containers = [{
        name         = "admin"
        command      = ["tokens", "ls"]
        essential    = true
        environment  = local.admin_environment
        secrets      = local.secrets["admin"]
        health       = null
        ports        = []
        depends_on   = []
        stop_timeout = 30
      }]
    }
  }

  # The SSM agent that ECS Exec starts in a container must write to its root
  # file system (aws/containers-roadmap#1359): a service's root is read-only
  # unless ECS Exec is enabled.
  read_only_root = { fetcher = !var.enable_execute_command, projector = !var.enable_execute_command, admin = true }

  container_definitions = { for task, def in local.tasks : task => [for c in def.containers : merge(
    {
      name        = c.name
      image       = local.image
      essential   = c.essential
      command     = c.command
      environment = [for k in sort(keys(c.environment)) : { name = k, value = c.environment[k] }]
      secrets     = [for k in sort(keys(c.secrets)) : { name = k, valueFrom = c.secrets[k] }]
      portMappings = [for p in c.ports : {
        name          = p.name
        containerPort = p.port
        protocol      = p.protocol
      }]
      # The image is read-only; /tmp, on the task's ephemeral storage, is
      # the one place a role may write.
      readonlyRootFilesystem = local.read_only_root[task]
      mountPoints = [{
        sourceVolume  = "tmp"
        containerPath = "/tmp"
        readOnly      = false
      }]
      # 120 s is Fargate's longest: time for a stopping fetcher to hand its
      # pins back.
      stopTimeout = c.stop_timeout
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this[task].name
          awslogs-region        = local.region
          awslogs-stream-prefix = c.name
        }
      }
    },
    c.health != null ? { healthCheck = c.health } : {},
    length(c.depends_on) > 0 ? { dependsOn = c.depends_on } : {},
  )] }

  # The Secrets Manager secrets each task's execution role injects.
  injected_secrets = { for task, def in local.tasks : task => distinct(flatten([for c in def.containers : [for k in sort(keys(c.secrets)) : c.secrets[k]]])) }
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  # A disposable deployment's repository goes with its images.
  force_delete = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest ${var.image_retention_count} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.image_retention_count
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  # Container Insights publishes RunningTaskCount, which autoscaling divides
  # the backlog by.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(keys(local.tasks))

  name = "/ecs/${var.name}/${each.key}"
  # What the admin task prints (a new token, once) is kept a day only.
  retention_in_days = each.key == "admin" ? 1 : var.log_retention_days

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  for_each = toset(keys(local.tasks))

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.tasks[each.key].cpu
  memory                   = local.tasks[each.key].memory
  execution_role_arn       = aws_iam_role.execution[each.key].arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions    = jsonencode(local.container_definitions[each.key])

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = var.tags
}

resource "aws_ecs_service" "fetcher" {
  name            = "${var.name}-fetcher"
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.this["fetcher"].arn
  desired_count   = var.fetcher_min_count
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  # A new version starts its tasks before the old ones stop; old tasks in
  # the middle of a fetch stay protected until they finish.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  enable_execute_command = var.enable_execute_command

  # Public fetchers: each task in a public subnet with its own public IPv4,
  # dialable on the libp2p ports at that address with its own peer id.
  network_configuration {
    subnets          = var.fetchers_public ? var.public_subnet_ids : var.subnet_ids
    security_groups  = [aws_security_group.tasks.id, aws_security_group.libp2p.id]
    assign_public_ip = var.fetchers_public
  }

  tags = var.tags

  lifecycle {
    # Autoscaling owns the count once the service exists.
    ignore_changes = [desired_count]
  }

  # A task cannot start before the secrets it is given hold a value, nor
  # connect to the views before the projector's views-setup has created
  # them and the app role: the fetchers start once the projector service is
  # steady (see wait_for_steady_state there).
  depends_on = [aws_secretsmanager_secret_version.libp2p_seed, aws_ecs_service.projector]
}

resource "aws_ecs_service" "projector" {
  name            = "${var.name}-projector"
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.this["projector"].arn
  desired_count   = 1
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  # One projector at a time, even during a deployment: the old task stops
  # before the new one starts.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  enable_execute_command = var.enable_execute_command

  # `terraform apply` waits for the projector to run healthy (views-setup
  # done: the app role and the views' schema exist) before it starts the
  # fetchers (which fail to start without the views and the app role, and
  # would trip their circuit breaker on a first deployment), and fails if it
  # never does.
  wait_for_steady_state = true

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  tags = var.tags

  depends_on = [aws_secretsmanager_secret_version.webhook_key]
}

resource "aws_appautoscaling_target" "fetcher" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.fetcher.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.fetcher_min_count
  max_capacity       = var.fetcher_max_count

  tags = var.tags
}

# Track the backlog per running fetcher: Backlog (queued pins plus retries
# due, published by the projector) divided by Container Insights'
# RunningTaskCount. Scale-in never stops a task mid-fetch: the fetcher
# protects its task while it holds work (ECS task scale-in protection).
resource "aws_appautoscaling_policy" "fetcher_backlog" {
  name               = "${var.name}-fetcher-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.fetcher.service_namespace
  resource_id        = aws_appautoscaling_target.fetcher.resource_id
  scalable_dimension = aws_appautoscaling_target.fetcher.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      metrics {
        id          = "backlog"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "Pickup"
            metric_name = "Backlog"

            dimensions {
              name  = "Deployment"
              value = var.name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.fetcher.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Backlog per running fetcher"
        expression  = "backlog / tasks"
        return_data = true
      }
    }
  }
}
