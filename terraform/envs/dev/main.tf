# pickup for development: two zones, one NAT gateway, a views cluster that
# can pause when idle, and data that `terraform destroy` may take with it.

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

  single_nat_gateway          = true
  disposable                  = true
  views_min_capacity          = 0
  views_max_capacity          = 2
  views_backup_retention_days = 1
  fetcher_min_count           = 1
  log_level                   = "debug"
  log_retention_days          = 14

  # The log is the system of record even in dev: a week of point-in-time
  # recovery, though `terraform destroy` takes it.
  eventlog_max_capacity          = 2
  eventlog_backup_retention_days = 7
}
