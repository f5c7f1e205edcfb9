# The whole of pickup on AWS: every module wired to the others as pickup's
# configuration expects. The environments (envs/dev, envs/prod) call it
# with their sizing and protection; what differs between them is variables
# here, never wiring.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs            = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  account_id     = data.aws_caller_identity.current.account_id
  lambda_package = coalesce(var.lambda_package, "${path.module}/../../../bin/lambda.zip")

  # Aurora PostgreSQL's max_connections: LEAST(DBInstanceClassMemory /
  # 9531392, 5000), Serverless v2 sizing it from the most ACUs (2 GiB each).
  # The alarm fires at 80 % of it.
  views_max_connections = min(floor(var.views_max_capacity * 2147483648 / 9531392), 5000)
}

module "network" {
  source = "../network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  azs                = local.azs
  single_nat_gateway = var.single_nat_gateway
}

module "storage" {
  source = "../storage"

  staging_bucket = "${var.name}-staging-${local.account_id}"
  carpark_bucket = "${var.name}-carpark-${local.account_id}"
  force_destroy  = var.disposable
}

# The event log: Aurora PostgreSQL of its own (the default), or the
# operator's EventStoreDB/KurrentDB, by connection string in a secret.
module "eventstore" {
  source = "../eventstore"
  count  = var.eventlog == "esdb" ? 1 : 0

  name                      = var.name
  connection_string         = var.eventlog_connection_string
  connection_string_version = var.eventlog_connection_string_version
  recovery_window_in_days   = var.disposable ? 0 : 30
}

module "eventlog" {
  source = "../eventlog"
  count  = var.eventlog == "postgres" ? 1 : 0

  name                           = var.name
  vpc_id                         = module.network.vpc_id
  subnet_ids                     = module.network.private_subnet_ids
  client_security_group_ids      = [module.fetchers.task_security_group_id, module.gateway.security_group_id, module.serve.security_group_id]
  secret_recovery_window_in_days = var.disposable ? 0 : 30
  max_capacity                   = var.eventlog_max_capacity
  instance_count                 = var.eventlog_instance_count
  deletion_protection            = !var.disposable
  skip_final_snapshot            = var.disposable
  backup_retention_days          = var.eventlog_backup_retention_days
}

locals {
  # What the roles are given of the event log, either kind: its secret
  # (the PostgreSQL log's app role, or the EventStoreDB connection string)
  # and, for PostgreSQL, the writer's URLs and the master secret.
  eventlog = var.eventlog == "postgres" ? {
    secret_arn        = module.eventlog[0].app_secret_arn
    secret_name       = module.eventlog[0].app_secret_name
    url               = module.eventlog[0].url
    setup_url         = module.eventlog[0].setup_url
    master_secret_arn = module.eventlog[0].master_secret_arn
    recoverable       = module.eventlog[0].secret_recovery_window_in_days > 0
    } : {
    secret_arn        = module.eventstore[0].secret_arn
    secret_name       = module.eventstore[0].secret_name
    url               = null
    setup_url         = null
    master_secret_arn = null
    recoverable       = module.eventstore[0].recovery_window_in_days > 0
  }
}

module "views" {
  source = "../views"

  name                             = var.name
  vpc_id                           = module.network.vpc_id
  subnet_ids                       = module.network.private_subnet_ids
  proxy_client_security_group_ids  = [module.gateway.security_group_id]
  direct_client_security_group_ids = [module.fetchers.task_security_group_id, module.serve.security_group_id]
  secret_recovery_window_in_days   = var.disposable ? 0 : 30
  min_capacity                     = var.views_min_capacity
  max_capacity                     = var.views_max_capacity
  instance_count                   = var.views_instance_count
  deletion_protection              = !var.disposable
  skip_final_snapshot              = var.disposable
  backup_retention_days            = var.views_backup_retention_days
}

module "gateway" {
  source = "../gateway"

  name                 = var.name
  package_file         = local.lambda_package
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  eventlog_secret_arn  = local.eventlog.secret_arn
  eventlog_url         = local.eventlog.url
  views_url            = module.views.proxy_url
  views_secret_arn     = module.views.app_secret_arn
  delegates            = var.delegates
  uploads_bucket       = module.storage.uploads_bucket
  uploads_prefix       = module.storage.uploads_prefix
  reserved_concurrency = var.gateway_reserved_concurrency
  log_level            = var.log_level
  log_retention_days   = var.log_retention_days
  domain_name          = var.domain_name
  certificate_arn      = var.certificate_arn
  route53_zone_id      = var.route53_zone_id
}

resource "aws_sns_topic" "pinned" {
  count = var.notify_on_pinned ? 1 : 0

  name = "${var.name}-pinned"
}

module "fetchers" {
  source = "../fetchers"

  name                   = var.name
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  public_subnet_ids      = module.network.public_subnet_ids
  fetchers_public        = var.fetchers_public
  enable_execute_command = var.enable_execute_command
  image_tag              = var.image_tag
  cpu_architecture       = var.cpu_architecture
  eventlog_secret_arn    = local.eventlog.secret_arn
  views_url              = module.views.cluster_url
  views_secret_arn       = module.views.app_secret_arn
  views_admin_secret_arn = module.views.master_secret_arn
  views_setup_url        = module.views.setup_url
  force_delete           = var.disposable

  secret_recovery_window_in_days = var.disposable ? 0 : 30
  staging_bucket                 = module.storage.staging_bucket
  staging_bucket_arn             = module.storage.staging_bucket_arn
  staging_prefix                 = module.storage.staging_prefix
  carpark_bucket                 = module.storage.carpark_bucket
  carpark_bucket_arn             = module.storage.carpark_bucket_arn
  uploads_bucket                 = module.storage.uploads_bucket
  uploads_bucket_arn             = module.storage.uploads_bucket_arn
  uploads_prefix                 = module.storage.uploads_prefix
  notify_on_pinned               = var.notify_on_pinned
  notify_topic_arn               = var.notify_on_pinned ? aws_sns_topic.pinned[0].arn : null
  fetcher_min_count              = var.fetcher_min_count
  fetcher_max_count              = var.fetcher_max_count
  log_level                      = var.log_level
  log_retention_days             = var.log_retention_days

  # The PostgreSQL event log's writer (null for esdb), for every role and
  # for events-setup with the log cluster's master secret.
  eventlog_url              = local.eventlog.url
  eventlog_setup_url        = local.eventlog.setup_url
  eventlog_admin_secret_arn = local.eventlog.master_secret_arn
}

# The trustless gateway over the carpark: `pickup serve` behind a load
# balancer, in the fetchers' cluster with their image, after the projector
# (whose views-setup creates the block-location lookup's schema).
module "serve" {
  source = "../serve"

  name               = var.name
  vpc_id             = module.network.vpc_id
  subnet_ids         = module.network.private_subnet_ids
  public_subnet_ids  = module.network.public_subnet_ids
  s3_prefix_list_id  = module.network.s3_prefix_list_id
  cluster_arn        = module.fetchers.cluster_arn
  cluster_name       = module.fetchers.cluster_name
  image              = module.fetchers.image
  ecr_repository_arn = module.fetchers.ecr_repository_arn
  cpu_architecture   = var.cpu_architecture
  start_after        = [module.fetchers.projector_service_name]

  views_url                  = module.views.cluster_url
  views_secret_arn           = module.views.app_secret_arn
  views_security_group_id    = module.views.db_security_group_id
  eventlog_url               = local.eventlog.url
  eventlog_secret_arn        = local.eventlog.secret_arn
  eventlog_security_group_id = var.eventlog == "postgres" ? module.eventlog[0].db_security_group_id : null
  carpark_bucket             = module.storage.carpark_bucket
  carpark_bucket_arn         = module.storage.carpark_bucket_arn

  max_requests       = var.serve_max_requests
  timeout            = var.serve_timeout
  max_dag_bytes      = var.serve_max_dag_bytes
  min_count          = var.serve_min_count
  max_count          = var.serve_max_count
  certificate_arn    = var.serve_certificate_arn
  domain_name        = var.serve_domain_name
  ipni_indexers      = var.serve_ipni_indexers
  alarm_actions      = [aws_sns_topic.alarms.arn]
  log_level          = var.log_level
  log_retention_days = var.log_retention_days

  secret_recovery_window_in_days = var.disposable ? 0 : 30
}

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

# Alarms (CloudWatch) and failed tasks (EventBridge) publish to the topic;
# the account keeps managing it.
resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountManagesTopic"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish", "sns:DeleteTopic"]
        Resource  = [aws_sns_topic.alarms.arn]
      },
      {
        Sid       = "AlarmsAndTaskFailuresPublish"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "events.amazonaws.com"] }
        Action    = ["sns:Publish"]
        Resource  = [aws_sns_topic.alarms.arn]
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "observability" {
  source = "../observability"

  name                                = var.name
  function_name                       = module.gateway.function_name
  cluster_name                        = module.fetchers.cluster_name
  fetcher_service_name                = module.fetchers.fetcher_service_name
  projector_service_name              = module.fetchers.projector_service_name
  serve_service_name                  = module.serve.service_name
  cluster_arn                         = module.fetchers.cluster_arn
  views_cluster_identifier            = module.views.cluster_identifier
  views_proxy_name                    = module.views.proxy_name
  views_connections_threshold         = floor(local.views_max_connections * 0.8)
  oldest_queued_age_threshold_seconds = var.oldest_queued_age_threshold_seconds
  alarm_actions                       = [aws_sns_topic.alarms.arn]
}
