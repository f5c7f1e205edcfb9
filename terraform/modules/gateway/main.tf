# The API: the pickup binary as a Lambda (arm64, provided.al2023, bootstrap),
# behind an API Gateway HTTP API, with its log groups and an optional custom
# domain. The function runs in the private subnets to reach the RDS Proxy and
# the event store.

data "aws_partition" "current" {}

locals {
  function_name = "${var.name}-gateway"

  # Settings the gateway reads (docs/configuration.md); later keys win, so
  # var.environment cannot override the wiring.
  environment = merge(var.environment, {
    PICKUP_DEPLOYMENT          = var.name
    PICKUP_EMF                 = "true"
    PICKUP_LOG_LEVEL           = var.log_level
    PICKUP_EVENTLOG_SECRET_ARN = var.eventlog_secret_arn
    PICKUP_VIEWS               = var.views_url
    PICKUP_VIEWS_SECRET_ARN    = var.views_secret_arn
    }, var.eventlog_url != null ? {
    # A PostgreSQL log: its writer as the app role, whose secret
    # (PICKUP_EVENTLOG_SECRET_ARN) completes the URL.
    PICKUP_EVENTLOG = var.eventlog_url
    } : {}, var.uploads_bucket != null ? {
    # CAR uploads, received into the bucket the fetchers read.
    PICKUP_UPLOADS_BUCKET = var.uploads_bucket
    PICKUP_UPLOADS_PREFIX = var.uploads_prefix
    } : {}, length(var.delegates) > 0 ? {
    # A static list replaces the live fetchers' announced addresses (for
    # private fetchers); unset, the gateway answers with those.
    PICKUP_DELEGATES = join(",", var.delegates)
  } : {})

  custom_domain = var.domain_name != null

  # A CAR upload (put whole once received and checked: on Lambda one is
  # at most 4 MiB, under a multipart part) and its index; deleted when no
  # pin records it. Nothing else of the bucket, never a read.
  uploads_statements = var.uploads_bucket != null ? [{
    Sid      = "ReceiveCarUploads"
    Effect   = "Allow"
    Action   = ["s3:PutObject", "s3:DeleteObject"]
    Resource = ["arn:${data.aws_partition.current.partition}:s3:::${var.uploads_bucket}/${var.uploads_prefix}*"]
  }] : []
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${local.function_name}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_iam_role" "gateway" {
  name = local.function_name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

# Least privilege: its own log group, the two secrets it reads at start, the
# CAR uploads it receives (uploads_bucket, its prefix only), and the network
# interfaces Lambda manages for it in the VPC (EC2 offers no resource-level
# permissions for those, hence the one "*" resource).
resource "aws_iam_role_policy" "gateway" {
  name = "gateway"
  role = aws_iam_role.gateway.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.function.arn}:*"]
      },
      {
        Sid      = "ReadConnectionSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [var.eventlog_secret_arn, var.views_secret_arn]
      },
      {
        Sid    = "ManageVpcNetworkInterfaces"
        Effect = "Allow"
        Action = [
          "ec2:CreateNetworkInterface",
          "ec2:DeleteNetworkInterface",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSubnets",
          "ec2:AssignPrivateIpAddresses",
          "ec2:UnassignPrivateIpAddresses",
        ]
        Resource = ["*"]
      },
    ], local.uploads_statements)
  })
}

resource "aws_security_group" "gateway" {
  name        = local.function_name
  description = "pickup gateway Lambda: no inbound; out to the views proxy, the event store and AWS APIs."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = local.function_name })
}

resource "aws_vpc_security_group_egress_rule" "gateway" {
  security_group_id = aws_security_group.gateway.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "The proxy, the event store and AWS APIs (Secrets Manager) through the NAT; S3 (CAR uploads) through the gateway endpoint"
}

resource "aws_lambda_function" "gateway" {
  function_name                  = local.function_name
  description                    = "pickup: the IPFS Pinning Service API"
  role                           = aws_iam_role.gateway.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = ["arm64"]
  filename                       = var.package_file
  source_code_hash               = filebase64sha256(var.package_file)
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = local.environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.gateway.id]
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.gateway]
}

resource "aws_apigatewayv2_api" "this" {
  name          = local.function_name
  description   = "pickup: the IPFS Pinning Service API and ipfs-cluster routes"
  protocol_type = "HTTP"

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "gateway" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.gateway.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.timeout * 1000
}

resource "aws_apigatewayv2_route" "default" {
  api_id    = aws_apigatewayv2_api.this.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.gateway.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      path           = "$context.path"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latency        = "$context.responseLatency"
      error          = "$context.integrationErrorMessage"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowInvokeFromApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.gateway.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

resource "aws_apigatewayv2_domain_name" "this" {
  count = local.custom_domain ? 1 : 0

  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = var.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.certificate_arn != null
      error_message = "A custom domain_name needs certificate_arn."
    }
  }
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count = local.custom_domain ? 1 : 0

  api_id      = aws_apigatewayv2_api.this.id
  domain_name = aws_apigatewayv2_domain_name.this[0].id
  stage       = aws_apigatewayv2_stage.default.id
}

resource "aws_route53_record" "this" {
  count = local.custom_domain && var.route53_zone_id != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}
