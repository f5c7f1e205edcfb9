# The serve task's two roles, each naming exactly its own resources: the
# execution role (what ECS does to start the task) and the task role (what
# `pickup serve` does: read the carpark and the two app roles' secrets;
# nothing of staging, no write anywhere in S3).

locals {
  ecs_tasks_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { ArnLike = { "aws:SourceArn" = "arn:${data.aws_partition.current.partition}:ecs:${local.region}:${data.aws_caller_identity.current.account_id}:*" } }
    }]
  })

  execution_policy = {
    Version = "2012-10-17"
    Statement = concat([
      {
        # ECR offers no resource-level permission for its login token.
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = ["*"]
      },
      {
        Sid      = "PullImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = [var.ecr_repository_arn]
      },
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.this.arn}:*"]
      },
      ], length(local.secrets) > 0 ? [{
        Sid      = "InjectSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = sort(values(local.secrets))
    }] : [])
  }

  task_policy = {
    Version = "2012-10-17"
    Statement = concat([
      {
        # The app role's password, read for each new views connection
        # (the block-location lookup is a schema of the views' database);
        # never the master secret.
        Sid      = "ReadViewsSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [var.views_secret_arn]
      },
      ], local.postgres_log ? [{
        # The PostgreSQL log's app role, for each new connection: serve
        # follows CarValidated and appends reports of corrupt blocks.
        Sid      = "ReadEventLogSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [var.eventlog_secret_arn]
      }] : [], [
      {
        # Range reads (and HEADs) of CARs and their indexes.
        Sid      = "ReadCars"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.carpark_bucket_arn}/*"]
      },
      {
        # The root → CAR mappings are listed by prefix; without ListBucket
        # a HEAD of a missing object answers 403, not 404.
        Sid      = "ListCarpark"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [var.carpark_bucket_arn]
      },
    ])
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-serve-execution"
  assume_role_policy = local.ecs_tasks_trust

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-serve"
  role   = aws_iam_role.execution.id
  policy = jsonencode(local.execution_policy)
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-serve"
  assume_role_policy = local.ecs_tasks_trust

  tags = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "serve"
  role   = aws_iam_role.task.id
  policy = jsonencode(local.task_policy)
}
