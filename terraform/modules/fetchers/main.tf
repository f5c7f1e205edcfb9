# The Fargate side: an ECR repository for the pickup image, an ECS cluster,
# the fetchers (`pickup fetcher`) scaled on the backlog the projector
# publishes, and the projector (`pickup projector`), one task, never two.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region    = data.aws_region.current.region
  s3_region = coalesce(var.s3_region, local.region)
  image     = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"

  # Both services connect to the same stores: the event log's connection
  # string and the views' password come from Secrets Manager through ECS,
  # never through Terraform's state.
  secrets = [
    { name = "PICKUP_EVENTLOG", valueFrom = var.eventlog_secret_arn },
    { name = "PGPASSWORD", valueFrom = "${var.views_secret_arn}:password::" },
  ]

  common_environment = {
    PICKUP_DEPLOYMENT = var.name
    PICKUP_EMF        = "true"
    PICKUP_LOG_LEVEL  = var.log_level
    PICKUP_VIEWS      = var.views_url
    PICKUP_ADMIN_ADDR = ":9464"
  }

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
  })

  projector_environment = merge(
    var.projector_environment,
    local.common_environment,
    { PICKUP_MAX_ATTEMPTS = tostring(var.max_attempts) },
    var.notify_on_pinned ? { PICKUP_NOTIFY_TOPIC_ARN = var.notify_topic_arn } : {},
  )

  containers = {
    fetcher = {
      command     = ["fetcher"]
      environment = local.fetcher_environment
    }
    projector = {
      command     = ["projector"]
      environment = local.projector_environment
    }
  }

  container_definitions = { for role, c in local.containers : role => [{
    name        = role
    image       = local.image
    essential   = true
    command     = c.command
    environment = [for k in sort(keys(c.environment)) : { name = k, value = c.environment[k] }]
    secrets     = local.secrets
    portMappings = [{
      name          = "admin"
      containerPort = 9464
      protocol      = "tcp"
    }]
    # The image is read-only; /tmp, on the task's ephemeral storage, is
    # the one place a role may write.
    readonlyRootFilesystem = true
    mountPoints = [{
      sourceVolume  = "tmp"
      containerPath = "/tmp"
      readOnly      = false
    }]
    # Fargate's longest: time for a stopping fetcher to hand its pins back.
    stopTimeout = 120
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this[role].name
        awslogs-region        = local.region
        awslogs-stream-prefix = role
      }
    }
  }] }
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

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
  for_each = local.containers

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "pickup fetchers and projector: no inbound; out to IPFS, the event store, the views and AWS APIs."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-tasks" })
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  security_group_id = aws_security_group.tasks.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "IPFS peers and gateways, the event store, the views, S3 and other AWS APIs"
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.containers

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.key == "fetcher" ? var.fetcher_cpu : var.projector_cpu
  memory                   = each.key == "fetcher" ? var.fetcher_memory : var.projector_memory
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

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  tags = var.tags

  lifecycle {
    # Autoscaling owns the count once the service exists.
    ignore_changes = [desired_count]
  }
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

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  tags = var.tags
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
