# The serving role: `pickup serve`, a trustless HTTP gateway (GET and HEAD
# /ipfs/{cid}) over the carpark, as a Fargate service in the deployment's
# ECS cluster behind an internet-facing Application Load Balancer,
# autoscaled on requests per task and on CPU. It reads the carpark (never
# staging, never a write), the views (the block-location lookup is a schema
# of the views' database) and the event log (it appends reports of corrupt
# stored blocks and follows CarValidated to keep the lookup current). Its
# libp2p endpoint (bitswap, behind a Network Load Balancer) and peer key
# are in libp2p.tf; the delegated routing and IPNI advertisement paths
# (/routing/v1/, /ipni/v1/ad/) are on the serving port behind the ALB,
# whose listeners forward every path. Security groups are in network.tf,
# IAM in iam.tf, alarms in alarms.tf.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region    = data.aws_region.current.region
  s3_region = coalesce(var.s3_region, local.region)

  # Where the binary is in the image ko builds (scripts/build-image.sh).
  binary = "/ko-app/pickup"

  serve_port = 8080
  admin_port = 9464

  postgres_log = var.eventlog_url != null

  # The stores as every role gets them (see modules/fetchers): the views
  # and a PostgreSQL log as their app roles, the passwords read by the
  # process from the secrets; the carpark by the names the fetcher's task
  # is given. Later keys win: the extra settings cannot undo the wiring.
  environment = merge(var.environment, {
    PICKUP_DEPLOYMENT          = var.name
    PICKUP_EMF                 = "true"
    PICKUP_LOG_LEVEL           = var.log_level
    PICKUP_VIEWS               = var.views_url
    PICKUP_VIEWS_SECRET_ARN    = var.views_secret_arn
    PICKUP_ADMIN_ADDR          = ":${local.admin_port}"
    PICKUP_CARPARK_BUCKET      = var.carpark_bucket
    PICKUP_S3_REGION           = local.s3_region
    PICKUP_SERVE_ADDR          = "0.0.0.0:${local.serve_port}"
    PICKUP_SERVE_MAX_REQUESTS  = tostring(var.max_requests)
    PICKUP_SERVE_TIMEOUT       = var.timeout
    PICKUP_SERVE_MAX_DAG_BYTES = format("%d", var.max_dag_bytes)
    # The libp2p host (bitswap) on every interface of the task; announced
    # as the load balancer's addresses, with the gateway's public URL.
    PICKUP_SERVE_LIBP2P_LISTEN   = join(",", local.libp2p_listen)
    PICKUP_SERVE_LIBP2P_ANNOUNCE = join(",", local.libp2p_announce)
    PICKUP_SERVE_PUBLIC_URL      = local.url
    }, length(var.ipni_indexers) > 0 ? {
    PICKUP_IPNI_INDEXERS = join(",", var.ipni_indexers)
    } : {}, local.postgres_log ? {
    PICKUP_EVENTLOG            = var.eventlog_url
    PICKUP_EVENTLOG_SECRET_ARN = var.eventlog_secret_arn
  } : {})

  # Injected by ECS (execution role): the peer key, and an EventStoreDB
  # log's connection string; a PostgreSQL log's app role password is read
  # by the process.
  secrets = merge(
    { PICKUP_SERVE_LIBP2P_KEY = aws_secretsmanager_secret.libp2p_key.arn },
    local.postgres_log ? {} : { PICKUP_EVENTLOG = var.eventlog_secret_arn },
  )

  container_definitions = [{
    name        = "serve"
    image       = var.image
    essential   = true
    command     = ["serve"]
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    secrets     = [for k in sort(keys(local.secrets)) : { name = k, valueFrom = local.secrets[k] }]
    # libp2p's QUIC is on udp/4002 too, unmapped: ECS refuses a service
    # whose load balancer names a container port mapped twice, for two
    # protocols (aws/amazon-ecs-agent#3428), and in awsvpc mode the task's
    # network interface is the container's: its security group, not a
    # mapping, decides what reaches udp/4002.
    portMappings = [
      { name = "http", containerPort = local.serve_port, protocol = "tcp" },
      { name = "admin", containerPort = local.admin_port, protocol = "tcp" },
      { name = "libp2p", containerPort = local.libp2p_port, protocol = "tcp" },
    ]
    # Liveness from the process's admin server, as for the other tasks;
    # the load balancer asks /healthz on the serving port for readiness.
    healthCheck = {
      command     = ["CMD", local.binary, "health", "--live"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    # The image is read-only; /tmp, on the task's ephemeral storage, is
    # the one place the process may write.
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    # Requests in flight end within PICKUP_SERVE_TIMEOUT once the load
    # balancer has drained the target (deregistration_delay).
    stopTimeout = 60
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "serve"
      }
    }
  }]

  https = var.certificate_arn != null
  url   = local.https ? "https://${coalesce(var.domain_name, aws_lb.this.dns_name)}" : "http://${aws_lb.this.dns_name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}/serve"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-serve"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.container_definitions)

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = var.tags
}

resource "aws_lb" "this" {
  name               = "${var.name}-serve"
  internal           = false
  load_balancer_type = "application"
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]
  # Requests with header fields that are not valid HTTP are dropped, not
  # passed on to the tasks.
  drop_invalid_header_fields = true
  # Longer than PICKUP_SERVE_TIMEOUT's default, so that the task ends a
  # slow response before the load balancer cuts it.
  idle_timeout = 60

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  name        = "${var.name}-serve"
  port        = local.serve_port
  protocol    = "HTTP"
  vpc_id      = var.vpc_id
  target_type = "ip"
  # Time for requests in flight to finish (PICKUP_SERVE_TIMEOUT, 30 s by
  # default) before a stopping task is taken out.
  deregistration_delay = 30

  # Readiness: `pickup serve` answers 200 on /healthz when it can serve.
  health_check {
    path                = "/healthz"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

# HTTP forwards to the tasks; with a certificate it redirects to HTTPS.
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.this.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []

      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

# What must run before the service starts (the projector service: its
# views-setup creates the schema of the block-location lookup).
resource "terraform_data" "start_after" {
  input = var.start_after
}

resource "aws_ecs_service" "this" {
  name            = "${var.name}-serve"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.min_count
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  # A new version's tasks are healthy behind the load balancer before the
  # old ones stop.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The load balancer's health check waits for the process to start.
  health_check_grace_period_seconds = 60

  # Private subnets: only the load balancer reaches the tasks.
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = "serve"
    container_port   = local.serve_port
  }

  # libp2p, TCP and UDP, through the Network Load Balancer.
  load_balancer {
    target_group_arn = aws_lb_target_group.libp2p.arn
    container_name   = "serve"
    container_port   = local.libp2p_port
  }

  tags = var.tags

  lifecycle {
    # Autoscaling owns the count once the service exists.
    ignore_changes = [desired_count]
  }

  # ECS refuses a target group no listener forwards to.
  depends_on = [aws_lb_listener.http, aws_lb_listener.https, aws_lb_listener.libp2p, terraform_data.start_after]
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count

  tags = var.tags
}

# Two target-tracking policies: the service scales out when either asks
# and in only when both allow it.
resource "aws_appautoscaling_policy" "requests" {
  name               = "${var.name}-serve-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.this.arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-serve-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
