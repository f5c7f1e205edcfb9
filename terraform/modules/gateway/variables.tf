variable "name" {
  description = "Name of the deployment: prefixes the function and its log groups, and is the Deployment dimension of its metrics (PICKUP_DEPLOYMENT)."
  type        = string
}

variable "package_file" {
  description = "Path of the Lambda deployment package that `make lambda` builds (bin/lambda.zip): the pickup binary as `bootstrap`, for linux/arm64."
  type        = string
}

variable "vpc_id" {
  description = "VPC the function runs in, to reach the RDS Proxy and the event store."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function runs in."
  type        = list(string)
}

variable "eventlog_secret_arn" {
  description = "ARN of the event log's secret (PICKUP_EVENTLOG_SECRET_ARN): an EventStoreDB connection string, or with eventlog_url the PostgreSQL log's app role (JSON username and password)."
  type        = string
}

variable "eventlog_url" {
  description = "The PostgreSQL event log as its app role, a postgres:// URL without password (PICKUP_EVENTLOG); null for an EventStoreDB log."
  type        = string
  default     = null

  validation {
    condition     = var.eventlog_url == null || can(regex("^postgres(ql)?://[^:@/]+@[^/]+/", var.eventlog_url))
    error_message = "eventlog_url must be a postgres:// URL naming the app role and no password (the secret gives it)."
  }
}

variable "views_url" {
  description = "The views through the RDS Proxy, as a postgres:// URL without password (PICKUP_VIEWS)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:@/]+@", var.views_url))
    error_message = "views_url must be a postgres:// URL with a user and without a password."
  }
}

variable "views_secret_arn" {
  description = "ARN of the views application role's secret, JSON {\"username\",\"password\"} (PICKUP_VIEWS_SECRET_ARN), read again for each new connection."
  type        = string
}

variable "delegates" {
  description = "Static delegates (PICKUP_DELEGATES): multiaddrs returned to clients instead of the live fetchers' announced addresses; empty leaves PICKUP_DELEGATES unset."
  type        = list(string)
  default     = []
}

variable "environment" {
  description = "More PICKUP_* settings for the gateway (docs/configuration.md), such as PICKUP_ALLOW_PRIVATE_ORIGINS. They cannot replace the ones this module sets."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^PICKUP_[A-Z0-9_]+$", k))])
    error_message = "environment may only hold PICKUP_* variables."
  }
}

variable "log_level" {
  description = "PICKUP_LOG_LEVEL: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU grows with it)."
  type        = number
  default     = 512
}

variable "timeout" {
  description = "Longest a request may take, in seconds (API Gateway gives up after 30)."
  type        = number
  default     = 29

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 30
    error_message = "timeout must be between 1 and 30 seconds: API Gateway waits 30 at most."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function, which also caps it (and so the connections to the proxy); -1 for no reservation."
  type        = number
  default     = -1
}

variable "throttling_burst_limit" {
  description = "Requests the API accepts in a burst before answering 429."
  type        = number
  default     = 500
}

variable "throttling_rate_limit" {
  description = "Steady requests per second the API accepts before answering 429."
  type        = number
  default     = 200
}

variable "log_retention_days" {
  description = "Days the function's and the API's logs are kept."
  type        = number
  default     = 30
}

variable "domain_name" {
  description = "Custom domain for the API (e.g. pin.example.com); null to use the execute-api address only."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ARN of an ACM certificate for domain_name, in the same region. Required with domain_name."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone in which to create domain_name's alias record; null to create the DNS record yourself (output domain_target)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "uploads_bucket" {
  description = "Bucket of CAR uploads (PICKUP_UPLOADS_BUCKET): the gateway puts the CARs tenants send (up to 4 MiB on Lambda) there, for the fetchers to read; null: CAR uploads are refused (413)."
  type        = string
  default     = null
}

variable "uploads_prefix" {
  description = "Key prefix of CAR uploads in uploads_bucket (PICKUP_UPLOADS_PREFIX); the gateway may write and delete nothing else."
  type        = string
  default     = "uploads/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.uploads_prefix))
    error_message = "uploads_prefix must be a relative key prefix ending in \"/\", such as \"uploads/\"."
  }
}
