# pickup for development: two zones, one NAT gateway, a views cluster that
# can pause when idle, and buckets that `terraform destroy` may empty.

data "aws_caller_identity" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs            = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  account_id     = data.aws_caller_identity.current.account_id
  lambda_package = coalesce(var.lambda_package, "${path.root}/../../../bin/lambda.zip")
}

module "network" {
  source = "../../modules/network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  azs                = local.azs
  single_nat_gateway = true
}

module "storage" {
  source = "../../modules/storage"

  staging_bucket = "${var.name}-staging-${local.account_id}"
  carpark_bucket = "${var.name}-carpark-${local.account_id}"
  force_destroy  = true
}

module "eventstore" {
  source = "../../modules/eventstore"

  name                      = var.name
  connection_string         = var.eventlog_connection_string
  connection_string_version = var.eventlog_connection_string_version
  recovery_window_in_days   = 0
}

module "views" {
  source = "../../modules/views"

  name                             = var.name
  vpc_id                           = module.network.vpc_id
  subnet_ids                       = module.network.private_subnet_ids
  proxy_client_security_group_ids  = [module.gateway.security_group_id]
  direct_client_security_group_ids = [module.fetchers.task_security_group_id]
  min_capacity                     = 0
  max_capacity                     = 2
  deletion_protection              = false
  skip_final_snapshot              = true
  backup_retention_days            = 1
}

module "gateway" {
  source = "../../modules/gateway"

  name                = var.name
  package_file        = local.lambda_package
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  eventlog_secret_arn = module.eventstore.secret_arn
  views_url           = module.views.proxy_url
  views_secret_arn    = module.views.master_secret_arn
  delegates           = var.delegates
  log_level           = "debug"
  log_retention_days  = 14
  domain_name         = var.domain_name
  certificate_arn     = var.certificate_arn
  route53_zone_id     = var.route53_zone_id
}

resource "aws_sns_topic" "pinned" {
  count = var.notify_on_pinned ? 1 : 0

  name = "${var.name}-pinned"
}

module "fetchers" {
  source = "../../modules/fetchers"

  name                = var.name
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  image_tag           = var.image_tag
  cpu_architecture    = var.cpu_architecture
  eventlog_secret_arn = module.eventstore.secret_arn
  views_url           = module.views.cluster_url
  views_secret_arn    = module.views.master_secret_arn
  staging_bucket      = module.storage.staging_bucket
  staging_bucket_arn  = module.storage.staging_bucket_arn
  staging_prefix      = module.storage.staging_prefix
  carpark_bucket      = module.storage.carpark_bucket
  carpark_bucket_arn  = module.storage.carpark_bucket_arn
  notify_on_pinned    = var.notify_on_pinned
  notify_topic_arn    = var.notify_on_pinned ? aws_sns_topic.pinned[0].arn : null
  fetcher_min_count   = 1
  fetcher_max_count   = var.fetcher_max_count
  log_level           = "debug"
  log_retention_days  = 14
}

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "observability" {
  source = "../../modules/observability"

  name                                = var.name
  function_name                       = module.gateway.function_name
  cluster_name                        = module.fetchers.cluster_name
  fetcher_service_name                = module.fetchers.fetcher_service_name
  projector_service_name              = module.fetchers.projector_service_name
  oldest_queued_age_threshold_seconds = var.oldest_queued_age_threshold_seconds
  alarm_actions                       = [aws_sns_topic.alarms.arn]
}
