# The package is any file: bin/lambda.zip, as `make lambda` builds it (the
# Go test that runs these checks puts one there).
mock_provider "aws" {
  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/pickup-test-gateway"
    }
  }
}

variables {
  name                = "pickup-test"
  package_file        = "../../../bin/lambda.zip"
  vpc_id              = "vpc-1"
  subnet_ids          = ["subnet-a", "subnet-b"]
  eventlog_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf"
  views_url           = "postgres://pickup_app@proxy.example:5432/pickup?sslmode=require"
  views_secret_arn    = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
  delegates           = ["/dns4/a.example/tcp/4001/p2p/12D3KooWA", "/dns4/b.example/tcp/4001/p2p/12D3KooWB"]
}

run "lambda_runs_the_pickup_binary" {
  command = apply

  assert {
    condition     = aws_lambda_function.gateway.runtime == "provided.al2023" && aws_lambda_function.gateway.handler == "bootstrap"
    error_message = "the function must run the pickup binary as bootstrap on provided.al2023"
  }

  assert {
    condition     = aws_lambda_function.gateway.architectures == tolist(["arm64"])
    error_message = "the function must run on arm64"
  }

  assert {
    condition     = aws_lambda_function.gateway.source_code_hash == filebase64sha256("../../../bin/lambda.zip")
    error_message = "a new package must redeploy the function"
  }

  assert {
    condition     = one(aws_lambda_function.gateway.logging_config).log_group == aws_cloudwatch_log_group.function.name && aws_cloudwatch_log_group.function.retention_in_days == 30
    error_message = "the function must log to its own log group, which keeps logs for a limited time"
  }
}

run "environment_is_wired" {
  command = apply

  variables {
    environment = {
      PICKUP_ALLOW_PRIVATE_ORIGINS = "true"
      PICKUP_DEPLOYMENT            = "overridden"
    }
  }

  assert {
    condition = one(aws_lambda_function.gateway.environment).variables == tomap({
      PICKUP_DEPLOYMENT            = "pickup-test"
      PICKUP_EMF                   = "true"
      PICKUP_LOG_LEVEL             = "info"
      PICKUP_EVENTLOG_SECRET_ARN   = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf"
      PICKUP_VIEWS                 = "postgres://pickup_app@proxy.example:5432/pickup?sslmode=require"
      PICKUP_VIEWS_SECRET_ARN      = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
      PICKUP_DELEGATES             = "/dns4/a.example/tcp/4001/p2p/12D3KooWA,/dns4/b.example/tcp/4001/p2p/12D3KooWB"
      PICKUP_ALLOW_PRIVATE_ORIGINS = "true"
    })
    error_message = "the function's environment must name the event log and views secrets, the deployment and EMF, and keep the wiring over extra settings"
  }
}

run "no_static_delegates" {
  command = plan

  variables {
    delegates = []
  }

  assert {
    condition     = !contains(keys(one(aws_lambda_function.gateway.environment).variables), "PICKUP_DELEGATES")
    error_message = "without static delegates PICKUP_DELEGATES must be unset (the gateway answers with the live fetchers' addresses), never empty"
  }
}

run "least_privilege" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.gateway.policy).Statement[1] == {
      Sid      = "ReadConnectionSecrets"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"]
    }
    error_message = "the gateway may read exactly its two secrets"
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.gateway.policy).Statement[0].Resource == ["arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/pickup-test-gateway:*"]
    error_message = "the gateway may write to its own log group only"
  }

  assert {
    condition = alltrue(flatten([for s in jsondecode(aws_iam_role_policy.gateway.policy).Statement :
    [for a in s.Action : !strcontains(a, "*") && !startswith(a, "s3:")]]))
    error_message = "no wildcard actions, and no bucket access: the gateway touches no CAR"
  }

  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.gateway.policy).Statement :
    s.Resource != ["*"] || alltrue([for a in s.Action : startswith(a, "ec2:")])])
    error_message = "only the VPC network-interface actions, which EC2 cannot scope, may apply to every resource"
  }
}

run "behind_an_http_api" {
  command = apply

  assert {
    condition     = aws_apigatewayv2_api.this.protocol_type == "HTTP" && aws_apigatewayv2_route.default.route_key == "$default"
    error_message = "an HTTP API must send every route to the function"
  }

  assert {
    condition     = aws_apigatewayv2_integration.gateway.integration_uri == aws_lambda_function.gateway.invoke_arn && aws_apigatewayv2_integration.gateway.payload_format_version == "2.0"
    error_message = "the API must proxy to the function with payload format 2.0"
  }

  assert {
    condition     = aws_lambda_permission.api.principal == "apigateway.amazonaws.com" && endswith(aws_lambda_permission.api.source_arn, "/*/*")
    error_message = "only this API may invoke the function"
  }

  assert {
    condition     = length(aws_apigatewayv2_domain_name.this) == 0 && output.url == aws_apigatewayv2_api.this.api_endpoint
    error_message = "without a domain the API is served at its execute-api address"
  }
}

run "custom_domain" {
  command = apply

  variables {
    domain_name     = "pin.example.com"
    certificate_arn = "arn:aws:acm:eu-west-1:111122223333:certificate/abc"
    route53_zone_id = "Z123"
  }

  assert {
    condition     = one(aws_apigatewayv2_domain_name.this[0].domain_name_configuration).certificate_arn == "arn:aws:acm:eu-west-1:111122223333:certificate/abc"
    error_message = "the custom domain must use the given certificate"
  }

  assert {
    condition     = length(aws_apigatewayv2_api_mapping.this) == 1 && length(aws_route53_record.this) == 1 && output.url == "https://pin.example.com"
    error_message = "the custom domain must be mapped to the API and get its DNS record"
  }
}

run "custom_domain_needs_a_certificate" {
  command = plan

  variables {
    domain_name = "pin.example.com"
  }

  expect_failures = [aws_apigatewayv2_domain_name.this]
}

run "receives_car_uploads" {
  command = apply

  variables {
    uploads_bucket = "pickup-test-staging"
  }

  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }

  assert {
    condition = (one(aws_lambda_function.gateway.environment).variables["PICKUP_UPLOADS_BUCKET"] == "pickup-test-staging" &&
    one(aws_lambda_function.gateway.environment).variables["PICKUP_UPLOADS_PREFIX"] == "uploads/")
    error_message = "with uploads_bucket the function must be given the uploads area (PICKUP_UPLOADS_BUCKET, PICKUP_UPLOADS_PREFIX)"
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.gateway.policy).Statement : s if anytrue([for a in s.Action : startswith(a, "s3:")])] == [{
      Sid      = "ReceiveCarUploads"
      Effect   = "Allow"
      Action   = ["s3:PutObject", "s3:DeleteObject"]
      Resource = ["arn:aws:s3:::pickup-test-staging/uploads/*"]
    }]
    error_message = "the gateway may put and delete CAR uploads under the uploads prefix and nothing else of S3: no read, no other key, no bucket action"
  }
}

run "no_uploads_bucket" {
  command = plan

  assert {
    condition     = !contains(keys(one(aws_lambda_function.gateway.environment).variables), "PICKUP_UPLOADS_BUCKET")
    error_message = "without uploads_bucket PICKUP_UPLOADS_BUCKET must be unset (CAR uploads refused, 413)"
  }
}
