# pickup in production: three zones with a NAT gateway each, two views
# instances, protected data (never disposable: refused at plan time), longer
# logs, and room for twenty fetchers.

module "pickup" {
  source = "../../modules/pickup"

  name                                = var.name
  az_count                            = var.az_count
  vpc_cidr                            = var.vpc_cidr
  image_tag                           = var.image_tag
  cpu_architecture                    = var.cpu_architecture
  lambda_package                      = var.lambda_package
  fetchers_public                     = var.fetchers_public
  delegates                           = var.delegates
  enable_execute_command              = var.enable_execute_command
  eventlog                            = var.eventlog
  eventlog_connection_string          = var.eventlog_connection_string
  eventlog_connection_string_version  = var.eventlog_connection_string_version
  fetcher_max_count                   = var.fetcher_max_count
  oldest_queued_age_threshold_seconds = var.oldest_queued_age_threshold_seconds
  notify_on_pinned                    = var.notify_on_pinned
  alarm_email                         = var.alarm_email
  domain_name                         = var.domain_name
  certificate_arn                     = var.certificate_arn
  route53_zone_id                     = var.route53_zone_id
  serve_min_count                     = var.serve_min_count
  serve_max_count                     = var.serve_max_count
  serve_max_requests                  = var.serve_max_requests
  serve_timeout                       = var.serve_timeout
  serve_max_dag_bytes                 = var.serve_max_dag_bytes
  serve_certificate_arn               = var.serve_certificate_arn
  serve_domain_name                   = var.serve_domain_name
  serve_ipni_indexers                 = var.serve_ipni_indexers

  single_nat_gateway           = false
  allow_disposable             = false
  disposable                   = false
  views_min_capacity           = 0.5
  views_max_capacity           = 16
  views_instance_count         = 2
  views_backup_retention_days  = 14
  fetcher_min_count            = var.fetcher_min_count
  gateway_reserved_concurrency = var.gateway_reserved_concurrency
  log_retention_days           = 90

  # The system of record: RDS's longest point-in-time recovery, two
  # instances (a writer and a reader to fail over to), never deleted
  # (allow_disposable = false keeps deletion protection on).
  eventlog_max_capacity          = 16
  eventlog_instance_count        = 2
  eventlog_backup_retention_days = 35
}
