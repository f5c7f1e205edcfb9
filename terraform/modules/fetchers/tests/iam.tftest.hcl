# The roles' policies against the calls the code makes.
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

run "fetcher_permissions_name_their_resources" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.task["fetcher"].policy).Statement == [
      {
        Sid      = "ReadViewsSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"]
      },
      {
        Sid      = "StageCars"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        Resource = ["arn:aws:s3:::pickup-test-staging/staging/*"]
      },
      {
        Sid      = "ParkCars"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObjectTagging", "s3:GetObjectTagging"]
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
      {
        Sid      = "FindOwnPublicIp"
        Effect   = "Allow"
        Action   = ["ec2:DescribeNetworkInterfaces"]
        Resource = ["*"]
      },
    ]
    error_message = "the fetcher's role must allow every S3 call the fetcher makes, scoped to the staging prefix, the carpark and its own cluster's tasks"
  }

  assert {
    condition = alltrue(flatten([for p in concat(values(aws_iam_role_policy.task), values(aws_iam_role_policy.execution)) :
    [for s in jsondecode(p.policy).Statement : [for a in s.Action : !strcontains(a, "*")]]]))
    error_message = "no policy may grant wildcard actions"
  }

  assert {
    condition = alltrue(flatten([for p in concat(values(aws_iam_role_policy.task), values(aws_iam_role_policy.execution)) :
      [for s in jsondecode(p.policy).Statement : s.Resource != ["*"] || alltrue([for a in s.Action : contains(["ecr:GetAuthorizationToken", "ec2:DescribeNetworkInterfaces", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], a)])]
    ]))
    error_message = "only calls AWS cannot scope (the ECR login, DescribeNetworkInterfaces, ECS Exec's channels) may apply to every resource"
  }

  assert {
    condition = !anytrue(flatten([for p in values(aws_iam_role_policy.task) : [for s in jsondecode(p.policy).Statement :
    contains(s.Resource, var.views_admin_secret_arn)]]))
    error_message = "no task role may read the master secret: only ECS injects it, into views-setup"
  }

  assert {
    condition     = alltrue([for t in ["fetcher", "projector", "admin"] : jsondecode(aws_iam_role_policy.execution[t].policy).Statement[2].Resource == ["${aws_cloudwatch_log_group.this[t].arn}:*"]])
    error_message = "each task may write to its own log group only"
  }

  assert {
    condition = (jsondecode(aws_iam_role_policy.execution["fetcher"].policy).Statement[3].Resource == [var.eventlog_secret_arn, "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/libp2p-seed-AbCdEf"] &&
    jsondecode(aws_iam_role_policy.execution["admin"].policy).Statement[3].Resource == [var.eventlog_secret_arn])
    error_message = "ECS may read exactly the secrets it injects into each task"
  }
}

run "fetcher_reads_car_uploads" {
  command = apply

  variables {
    uploads_bucket     = "pickup-test-staging"
    uploads_bucket_arn = "arn:aws:s3:::pickup-test-staging"
  }

  assert {
    condition = ([for s in jsondecode(aws_iam_role_policy.task["fetcher"].policy).Statement : s if startswith(s.Sid, "ReadCarUploads") || startswith(s.Sid, "ListCarUploads")] == [
      {
        Sid      = "ReadCarUploads"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        Resource = ["arn:aws:s3:::pickup-test-staging/uploads/*"]
      },
      {
        Sid      = "ListCarUploads"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
        Resource = ["arn:aws:s3:::pickup-test-staging"]
      },
    ])
    error_message = "the fetcher's role must read, delete and sweep CAR uploads under the uploads prefix only, and never write there"
  }

  assert {
    condition     = output.fetcher_environment["PICKUP_UPLOADS_BUCKET"] == "pickup-test-staging" && output.fetcher_environment["PICKUP_UPLOADS_PREFIX"] == "uploads/"
    error_message = "with uploads_bucket the fetchers must be given the uploads area (PICKUP_UPLOADS_BUCKET, PICKUP_UPLOADS_PREFIX)"
  }
}

run "uploads_bucket_without_its_arn" {
  command = plan

  variables {
    uploads_bucket = "pickup-test-staging"
  }

  expect_failures = [var.uploads_bucket_arn]
}
