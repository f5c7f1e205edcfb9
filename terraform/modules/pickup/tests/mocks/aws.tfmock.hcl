# A mocked AWS for the whole deployment (account 111122223333 in us-east-1,
# views cluster and proxy endpoints of the deployment pickup-test), shared
# by this module's tests and the environments'.

mock_data "aws_caller_identity" {
  defaults = { account_id = "111122223333" }
}

mock_data "aws_availability_zones" {
  defaults = { names = ["us-east-1a", "us-east-1b", "us-east-1c"] }
}

mock_data "aws_partition" {
  defaults = { partition = "aws" }
}

mock_data "aws_region" {
  defaults = { region = "us-east-1" }
}

mock_resource "aws_rds_cluster" {
  defaults = {
    endpoint           = "pickup-test-views.cluster-abc.us-east-1.rds.amazonaws.com"
    master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-abc", kms_key_id = "", secret_status = "active" }]
  }
}

mock_resource "aws_db_proxy" {
  defaults = {
    endpoint = "pickup-test-views.proxy-abc.us-east-1.rds.amazonaws.com"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn = "arn:aws:s3:::mocked-bucket"
  }
}
