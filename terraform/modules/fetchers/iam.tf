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
  uploads_objects = "${coalesce(var.uploads_bucket_arn, "none")}/${var.uploads_prefix}*"

  # The CAR uploads the gateway received: read (HEAD, ranges, the index),
  # deleted once their pin is over; what a gateway killed mid-body left
  # (an unfinished multipart upload, an index without its CAR) listed and
  # swept at start. Nothing else of the bucket, never a write.
  uploads_statements = var.uploads_bucket != null ? [
    {
      Sid      = "ReadCarUploads"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
      Resource = [local.uploads_objects]
    },
    {
      # Without ListBucket a HEAD of an upload gone answers 403, not 404.
      Sid      = "ListCarUploads"
      Effect   = "Allow"
      Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
      Resource = [var.uploads_bucket_arn]
    },
  ] : []
  cluster_tasks = "arn:${data.aws_partition.current.partition}:ecs:${local.region}:${data.aws_caller_identity.current.account_id}:task/${aws_ecs_cluster.this.name}/*"

  # ECS Exec: the SSM agent's channels, which have no resource-level
  # permission (hence "*").
  exec_statement = {
    Sid      = "EcsExec"
    Effect   = "Allow"
    Action   = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
    Resource = ["*"]
  }

  # Every process reads the app role's secret for each new views
  # connection; never the master secret, which only ECS reads, for the
  # projector's views-setup container.
  read_views_secret = {
    Sid      = "ReadViewsSecret"
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = [var.views_secret_arn]
  }

  # With a PostgreSQL log, every process reads the log's app role secret
  # too, for each new connection; never its master secret, which only ECS
  # reads, for events-setup.
  read_secrets = concat([local.read_views_secret], local.postgres_log ? [{
    Sid      = "ReadEventLogSecret"
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = [var.eventlog_secret_arn]
  }] : [])

  execution_policies = { for role in keys(local.tasks) : role => {
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
        Resource = local.injected_secrets[role]
      },
    ]
  } }

  task_policies = {
    fetcher = {
      Version = "2012-10-17"
      Statement = concat(local.read_secrets, [
        {
          # Each attempt's marker (which upload it writes its CAR into, and
          # what it wrote), written, read and deleted; and what versions
          # that staged whole CARs here left (their uploads aborted):
          # staging prefix only.
          Sid    = "StageCars"
          Effect = "Allow"
          Action = [
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
          ]
          Resource = [local.staging_objects]
        },
        {
          # A CAR is written once, as a multipart upload at its key in the
          # carpark (PutObject: create, parts, complete), validated from its
          # parts' list, tagged with its CAR CID, aborted if it fails; HEAD
          # and GET of CARs there, to reuse them and to read back a
          # completion the server did not confirm, deleted if it does not
          # hold the bytes uploaded (DeleteObject).
          Sid    = "ParkCars"
          Effect = "Allow"
          Action = [
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
            "s3:PutObjectTagging",
            "s3:GetObjectTagging",
          ]
          Resource = [local.carpark_objects]
        },
        {
          # Without ListBucket a HEAD of a missing CAR answers 403, not 404;
          # the open uploads are listed to find a killed attempt's and
          # counted for pickup_multipart_uploads_open.
          Sid      = "ListCarpark"
          Effect   = "Allow"
          Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
          Resource = [var.carpark_bucket_arn]
        },
        {
          # A fetcher taking a request over finds what its earlier attempts
          # left (markers: ListObjectsV2; uploads) under the staging prefix.
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
        ], var.fetchers_public ? [{
          # PICKUP_LIBP2P_PUBLIC_IP=ecs: the public IPv4 of the task's
          # network interface. EC2 has no resource-level permission for
          # Describe calls, hence "*".
          Sid      = "FindOwnPublicIp"
          Effect   = "Allow"
          Action   = ["ec2:DescribeNetworkInterfaces"]
          Resource = ["*"]
      }] : [], local.uploads_statements, var.enable_execute_command ? [local.exec_statement] : [])
    }
    projector = {
      Version = "2012-10-17"
      Statement = concat(
        local.read_secrets,
        [{
          # The garbage collector: a released root's CAR, index and
          # mapping, found by listing <rootCid>/ and <carCid>/, deleted
          # after the grace period. Nothing else of the carpark, nothing of
          # staging.
          Sid      = "DeleteReleasedRoots"
          Effect   = "Allow"
          Action   = ["s3:DeleteObject"]
          Resource = [local.carpark_objects]
          }, {
          Sid      = "ListReleasedRoots"
          Effect   = "Allow"
          Action   = ["s3:ListBucket"]
          Resource = [var.carpark_bucket_arn]
        }],
        var.notify_on_pinned ? [{
          Sid      = "NotifyValidatedCars"
          Effect   = "Allow"
          Action   = ["sns:Publish"]
          Resource = [var.notify_topic_arn]
        }] : [],
        var.enable_execute_command ? [local.exec_statement] : [],
      )
    }
    admin = {
      Version = "2012-10-17"
      Statement = concat(local.read_secrets, [{
        # pickup reindex: reads each CAR once (and its CAR CID tag) and
        # writes its index and its root's mapping beside it; never a
        # deletion, nothing of staging.
        Sid      = "ReindexCars"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject"]
        Resource = [local.carpark_objects]
        }, {
        Sid      = "ListCars"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [var.carpark_bucket_arn]
      }])
    }
  }
}

resource "aws_iam_role" "execution" {
  for_each = toset(keys(local.tasks))

  name               = "${var.name}-${each.key}-execution"
  assume_role_policy = local.ecs_tasks_trust

  tags = var.tags
}

resource "aws_iam_role_policy" "execution" {
  for_each = toset(keys(local.tasks))

  name   = "start-${each.key}"
  role   = aws_iam_role.execution[each.key].id
  policy = jsonencode(local.execution_policies[each.key])
}

resource "aws_iam_role" "task" {
  for_each = toset(keys(local.tasks))

  name               = "${var.name}-${each.key}"
  assume_role_policy = local.ecs_tasks_trust

  tags = var.tags
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_policies

  name   = each.key
  role   = aws_iam_role.task[each.key].id
  policy = jsonencode(each.value)
}
