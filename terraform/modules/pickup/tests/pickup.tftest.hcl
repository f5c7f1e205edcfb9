# The whole deployment, planned and applied against a mocked AWS: checks that
# the modules are wired to each other as pickup's configuration expects.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                               = "pickup-test"
  az_count                           = 2
  vpc_cidr                           = "10.40.0.0/16"
  fetcher_max_count                  = 4
  image_tag                          = "v0.1.0"
  notify_on_pinned                   = true
  eventlog_connection_string         = "kurrentdb+discover://admin:changeit@cluster.example:2113"
  eventlog_connection_string_version = 1
}

run "wiring" {
  command = apply

  assert {
    condition     = module.gateway.environment["PICKUP_EVENTLOG_SECRET_ARN"] == module.eventstore.secret_arn
    error_message = "the gateway must read the event log secret this deployment creates"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_VIEWS"] == "postgres://pickup@pickup-test-views.proxy-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "the gateway must reach the views through the RDS Proxy"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_VIEWS_SECRET_ARN"] == "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-abc"
    error_message = "the gateway must log in to the views with the RDS-managed secret"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_DEPLOYMENT"] == "pickup-test" && module.gateway.environment["PICKUP_EMF"] == "true"
    error_message = "the gateway must publish EMF metrics under this deployment's name"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_STAGING_BUCKET"] == "pickup-test-staging-111122223333" && module.fetchers.fetcher_environment["PICKUP_CARPARK_BUCKET"] == "pickup-test-carpark-111122223333"
    error_message = "the fetchers must write to this deployment's buckets"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_S3_REGION"] == "us-east-1"
    error_message = "the fetchers must be told the buckets' region"
  }

  assert {
    condition     = module.fetchers.secrets == { PICKUP_EVENTLOG = module.eventstore.secret_arn, PGPASSWORD = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-abc:password::" }
    error_message = "the tasks must get the event log and the views password from this deployment's secrets"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_VIEWS"] == "postgres://pickup@pickup-test-views.cluster-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "the tasks must reach the views on the cluster's writer"
  }

  assert {
    condition     = module.fetchers.projector_environment["PICKUP_NOTIFY_TOPIC_ARN"] == output.pinned_topic_arn
    error_message = "the projector must notify this deployment's topic"
  }

  assert {
    condition     = length(output.nat_public_ips) == 2
    error_message = "a NAT gateway per zone unless single_nat_gateway"
  }
}

run "single_nat_gateway" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(module.network.nat_public_ips) == 1
    error_message = "single_nat_gateway makes one NAT gateway for every zone"
  }
}
