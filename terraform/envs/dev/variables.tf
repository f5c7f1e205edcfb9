variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the deployment: prefixes every resource and is the Deployment dimension of the metrics."
  type        = string
  default     = "pickup-dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3 to 32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment tag of every resource."
  type        = string
  default     = "dev"
}

variable "az_count" {
  description = "Availability zones to use, from the region's first."
  type        = number
  default     = 2
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "image_tag" {
  description = "Tag of the pickup image, pushed to the deployment's ECR repository (output ecr_repository_url), that the fetchers and the projector run."
  type        = string
}

variable "cpu_architecture" {
  description = "CPU architecture the image was built for and the tasks run on: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
}

variable "lambda_package" {
  description = "Path of the Lambda package; null for bin/lambda.zip at the repository's root, as `make lambda` builds it."
  type        = string
  default     = null
}

variable "fetchers_public" {
  description = "Run the fetchers in public subnets, each dialable at its own public address on libp2p port 4001; false keeps them private and needs delegates."
  type        = bool
  default     = true
}

variable "delegates" {
  description = "Static delegates returned to clients instead of the live fetchers' addresses (multiaddrs ending in /p2p/<peer id>); required when fetchers_public is false."
  type        = list(string)
  default     = []

  validation {
    condition     = var.fetchers_public || length(var.delegates) > 0
    error_message = "Private fetchers (fetchers_public = false) cannot be dialed by clients: give delegates, the multiaddrs (with /p2p/<peer id>) at which they are reachable, or set fetchers_public = true."
  }
}

variable "enable_execute_command" {
  description = "ECS Exec into the fetcher and projector tasks (their root file systems are then writable, as the SSM agent needs)."
  type        = bool
  default     = true
}

variable "eventlog" {
  description = "The event log: \"postgres\" (Aurora PostgreSQL of its own, made here; the default) or \"esdb\" (the operator's EventStoreDB/KurrentDB, by eventlog_connection_string)."
  type        = string
  default     = "postgres"

  validation {
    condition     = contains(["postgres", "esdb"], var.eventlog)
    error_message = "eventlog must be \"postgres\" (Aurora PostgreSQL, made here) or \"esdb\" (EventStoreDB/KurrentDB by connection string)."
  }
}

variable "eventlog_connection_string" {
  description = "EventStoreDB/KurrentDB connection string to write to the event log secret, write-only (never in state). Null to write it yourself; see modules/eventstore/README.md."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "eventlog_connection_string_version" {
  description = "Version of eventlog_connection_string (eventlog = \"esdb\" only): 0 to leave the secret to the operator; raise by one on every change."
  type        = number
  default     = 0
}

variable "fetcher_max_count" {
  description = "Most fetcher tasks."
  type        = number
  default     = 4
}

variable "oldest_queued_age_threshold_seconds" {
  description = "Alarm when the oldest queued pin has waited longer than this."
  type        = number
  default     = 3600
}

variable "notify_on_pinned" {
  description = "Create an SNS topic that the projector tells of every validated CAR."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "Email address subscribed to the alarms' SNS topic (the subscription must be confirmed); null for none."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "Custom domain of the API; null for the execute-api address."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate of domain_name, in var.region."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 zone to create domain_name's record in; null to create it yourself."
  type        = string
  default     = null
}

variable "serve_min_count" {
  description = "Fewest `pickup serve` tasks (the trustless gateway over the carpark)."
  type        = number
  default     = 2
}

variable "serve_max_count" {
  description = "Most `pickup serve` tasks autoscaling may run."
  type        = number
  default     = 10
}

variable "serve_max_requests" {
  description = "Requests one serve task serves at once (PICKUP_SERVE_MAX_REQUESTS)."
  type        = number
  default     = 256
}

variable "serve_timeout" {
  description = "Longest wait for a serve response's first byte and between its writes, a Go duration (PICKUP_SERVE_TIMEOUT)."
  type        = string
  default     = "30s"
}

variable "serve_max_dag_bytes" {
  description = "Largest DAG of a deserialized serve response, in bytes (PICKUP_SERVE_MAX_DAG_BYTES)."
  type        = number
  default     = 1073741824
}

variable "serve_certificate_arn" {
  description = "ACM certificate (in var.region) for the serve load balancer's HTTPS; null for HTTP only."
  type        = string
  default     = null
}

variable "serve_domain_name" {
  description = "Domain of serve_certificate_arn that you point at output serve_dns_name; null for the load balancer's name."
  type        = string
  default     = null
}

variable "serve_ipni_indexers" {
  description = "IPNI indexers (https:// base URLs) the serve role announces its advertisements to (PICKUP_IPNI_INDEXERS); none by default: a development deployment's advertisements stay out of the public index."
  type        = list(string)
  default     = []
}
