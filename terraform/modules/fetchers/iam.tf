# One execution role (what ECS does to start a task) and one task role (what
# the process does) per service, each naming exactly its own resources.

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

  staging_objects = "${var.staging_bucket_arn}/${var.staging_prefix}*"
  carpark_objects = "${var.carpark_bucket_arn}/*"
  cluster_tasks   = "arn:${data.aws_partition.current.partition}:ecs:${local.region}:${data.aws_caller_identity.current.account_id}:task/${aws_ecs_cluster.this.name}/*"

  execution_policies = { for role in keys(local.containers) : role => {
    Version = "2012-10-17"
    Statement = [
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
        Resource = [aws_ecr_repository.this.arn]
      },
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.this[role].arn}:*"]
      },
      {
        Sid      = "InjectSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [var.eventlog_secret_arn, var.views_secret_arn]
      },
    ]
  } }

  task_policies = {
    fetcher = {
      Version = "2012-10-17"
      Statement = [
        {
          # Each attempt's marker (which upload it writes its CAR into, and
          # what it wrote), written, read and deleted; and what versions
          # that staged whole CARs here left: staging prefix only.
          Sid    = "StageCars"
          Effect = "Allow"
          Action = [
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
          ]
          Resource = [local.staging_objects]
        },
        {
          # A CAR is written once, as a multipart upload at its key in the
          # carpark (PutObject: create, parts, complete), validated from its
          # parts' list, tagged with its CAR CID, aborted if it fails; HEAD
          # and GET of CARs there, to reuse them.
          Sid    = "ParkCars"
          Effect = "Allow"
          Action = [
            "s3:PutObject",
            "s3:GetObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
            "s3:PutObjectTagging",
            "s3:GetObjectTagging",
          ]
          Resource = [local.carpark_objects]
        },
        {
          # Without ListBucket a HEAD of a missing CAR answers 403, not 404;
          # the open uploads are counted for pickup_multipart_uploads_open.
          Sid      = "ListCarpark"
          Effect   = "Allow"
          Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
          Resource = [var.carpark_bucket_arn]
        },
        {
          # A fetcher taking a request over finds what its earlier attempts
          # left (markers, uploads) under the request's staging prefix.
          Sid      = "ListStaging"
          Effect   = "Allow"
          Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
          Resource = [var.staging_bucket_arn]
        },
        {
          # Scale-in protection, which the fetcher sets through the ECS
          # agent ($ECS_AGENT_URI/task-protection/v1/state) while it works:
          # the agent calls ECS with the task role.
          Sid      = "ProtectOwnTask"
          Effect   = "Allow"
          Action   = ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"]
          Resource = [local.cluster_tasks]
        },
      ]
    }
    projector = !var.notify_on_pinned ? null : {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "NotifyValidatedCars"
        Effect   = "Allow"
        Action   = ["sns:Publish"]
        Resource = [var.notify_topic_arn]
      }]
    }
  }
}

resource "aws_iam_role" "execution" {
  for_each = local.containers

  name               = "${var.name}-${each.key}-execution"
  assume_role_policy = local.ecs_tasks_trust

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  for_each = local.containers

  name   = "start-${each.key}"
  role   = aws_iam_role.execution[each.key].id
  policy = jsonencode(local.execution_policies[each.key])
}

resource "aws_iam_role" "task" {
  for_each = local.containers

  name               = "${var.name}-${each.key}"
  assume_role_policy = local.ecs_tasks_trust

  tags = var.tags
}

# The projector needs no AWS access at all unless it notifies a topic.
resource "aws_iam_role_policy" "task" {
  for_each = { for role, p in local.task_policies : role => p if role == "fetcher" || var.notify_on_pinned }

  name   = each.key
  role   = aws_iam_role.task[each.key].id
  policy = jsonencode(each.value)
}
