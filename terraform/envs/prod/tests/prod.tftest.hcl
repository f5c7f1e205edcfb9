# The whole deployment, planned and applied against a mocked AWS: checks that
# the modules are wired to each other as pickup's configuration expects.
mock_provider "aws" {
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "111122223333" }
  }

  override_data {
    target = data.aws_availability_zones.available
    values = { names = ["us-east-1a", "us-east-1b", "us-east-1c"] }
  }

  mock_data "aws_region" {
    defaults = { region = "us-east-1" }
  }

  mock_resource "aws_rds_cluster" {
    defaults = {
      endpoint           = "pickup-prod-views.cluster-abc.us-east-1.rds.amazonaws.com"
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-abc", kms_key_id = "", secret_status = "active" }]
    }
  }

  mock_resource "aws_db_proxy" {
    defaults = {
      endpoint = "pickup-prod-views.proxy-abc.us-east-1.rds.amazonaws.com"
    }
  }

  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::mocked-bucket"
    }
  }
}

variables {
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
    condition     = module.gateway.environment["PICKUP_VIEWS"] == "postgres://pickup@pickup-prod-views.proxy-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "the gateway must reach the views through the RDS Proxy"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_VIEWS_SECRET_ARN"] == "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-abc"
    error_message = "the gateway must log in to the views with the RDS-managed secret"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_DEPLOYMENT"] == "pickup-prod" && module.gateway.environment["PICKUP_EMF"] == "true"
    error_message = "the gateway must publish EMF metrics under this deployment's name"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_STAGING_BUCKET"] == "pickup-prod-staging-111122223333" && module.fetchers.fetcher_environment["PICKUP_CARPARK_BUCKET"] == "pickup-prod-carpark-111122223333"
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
    condition     = module.fetchers.fetcher_environment["PICKUP_VIEWS"] == "postgres://pickup@pickup-prod-views.cluster-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "the tasks must reach the views on the cluster's writer"
  }

  assert {
    condition     = module.fetchers.projector_environment["PICKUP_NOTIFY_TOPIC_ARN"] == output.pinned_topic_arn
    error_message = "the projector must notify this deployment's topic"
  }

  assert {
    condition     = length(output.nat_public_ips) == 3
    error_message = "prod runs a NAT gateway in each of its three zones"
  }
}
