variable "name" {
  description = "Name of the deployment: prefixes every resource and is the Deployment dimension of the metrics."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3 to 32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "az_count" {
  description = "Availability zones to use, from the region's first."
  type        = number
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC."
  type        = string
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
  description = "Run the fetchers in the public subnets, each task with its own public IPv4, dialable on libp2p port 4001 (TCP and QUIC) and announcing itself: the gateway answers clients with the live fetchers as delegates. False keeps them private, and then delegates must list where clients can reach them."
  type        = bool
  default     = true
}

variable "delegates" {
  description = "Static delegates: multiaddrs returned to clients instead of the live fetchers' announced addresses (PICKUP_DELEGATES; unset when empty). Required when fetchers_public is false."
  type        = list(string)
  default     = []

  validation {
    condition     = var.fetchers_public || length(var.delegates) > 0
    error_message = "Private fetchers (fetchers_public = false) cannot be dialed by clients: give delegates, the multiaddrs (with /p2p/<peer id>) at which they are reachable, or set fetchers_public = true."
  }

  validation {
    condition     = alltrue([for d in var.delegates : can(regex("^/.+/p2p/[A-Za-z0-9]+$", d))])
    error_message = "Each delegate must be a multiaddr ending in /p2p/<peer id>."
  }
}

variable "enable_execute_command" {
  description = "ECS Exec into the fetcher and projector tasks (`aws ecs execute-command`); their containers' root file systems are then writable, as the SSM agent needs."
  type        = bool
  default     = false
}

variable "allow_disposable" {
  description = "Whether this deployment may be disposable at all: an environment whose data must survive (prod) sets false, and disposable = true is then refused at plan time."
  type        = bool
  default     = true
}

variable "eventlog" {
  description = "The event log: \"postgres\" (default), an Aurora PostgreSQL cluster of its own made here; or \"esdb\", an EventStoreDB/KurrentDB cluster of the operator's, whose connection string the event log secret holds (eventlog_connection_string)."
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

  validation {
    condition     = var.eventlog == "esdb" || var.eventlog_connection_string_version == 0
    error_message = "eventlog_connection_string(_version) is EventStoreDB's connection string: set eventlog = \"esdb\" to use it, or leave it unset for the PostgreSQL event log (whose secrets are generated)."
  }
}

variable "eventlog_max_capacity" {
  description = "Most Aurora capacity units of the event log's cluster (eventlog = \"postgres\")."
  type        = number
  default     = 4
}

variable "eventlog_instance_count" {
  description = "Serverless v2 instances of the event log's cluster: one writer, the rest readers that can take over (eventlog = \"postgres\")."
  type        = number
  default     = 1
}

variable "eventlog_backup_retention_days" {
  description = "Days the event log cluster's automated backups, and so point-in-time recovery, reach back (1 to 35; eventlog = \"postgres\")."
  type        = number
  default     = 14
}

variable "fetcher_max_count" {
  description = "Most fetcher tasks (at most 20: each live fetcher leases one of 20 libp2p identity slots)."
  type        = number
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
  description = "ACM certificate of domain_name, in the deployment's region."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 zone to create domain_name's record in; null to create it yourself."
  type        = string
  default     = null
}

variable "fetcher_min_count" {
  description = "Fewest fetcher tasks, however empty the queue."
  type        = number
  default     = 1
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (survives the loss of a zone)."
  type        = bool
  default     = false
}

variable "disposable" {
  description = "A deployment whose data may go with it: `terraform destroy` empties the buckets and the ECR repository, deletes the secrets at once, and deletes the views cluster without protection or a final snapshot. Never for CARs that matter."
  type        = bool
  default     = false

  validation {
    condition     = var.allow_disposable || !var.disposable
    error_message = "This environment refuses disposable = true (allow_disposable = false): its buckets, views and secrets must survive `terraform destroy`."
  }
}

variable "views_min_capacity" {
  description = "Least Aurora capacity units of the views cluster (0 lets it pause when idle)."
  type        = number
  default     = 0.5
}

variable "views_max_capacity" {
  description = "Most Aurora capacity units of the views cluster."
  type        = number
  default     = 4
}

variable "views_instance_count" {
  description = "Serverless v2 instances of the views cluster: one writer, the rest readers that can take over."
  type        = number
  default     = 1
}

variable "views_backup_retention_days" {
  description = "Days the views cluster's automated backups are kept."
  type        = number
  default     = 7
}

variable "gateway_reserved_concurrency" {
  description = "Concurrent executions reserved for the gateway Lambda, which also caps them and so the connections to the views proxy; -1 for no reservation."
  type        = number
  default     = -1
}

variable "log_level" {
  description = "PICKUP_LOG_LEVEL of the gateway, the fetchers and the projector: debug, info, warn or error."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days the logs of every part are kept."
  type        = number
  default     = 30
}

variable "serve_min_count" {
  description = "Fewest `pickup serve` tasks (the trustless gateway over the carpark), however idle."
  type        = number
  default     = 2
}

variable "serve_max_count" {
  description = "Most `pickup serve` tasks autoscaling may run (on requests per task and CPU)."
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
  description = "Largest DAG of a deserialized serve response, in bytes (PICKUP_SERVE_MAX_DAG_BYTES); 1 GiB by default."
  type        = number
  default     = 1073741824
}

variable "serve_certificate_arn" {
  description = "ACM certificate for the serve load balancer's HTTPS listener (HTTP then redirects); null for HTTP only."
  type        = string
  default     = null
}

variable "serve_ipni_indexers" {
  description = "IPNI indexers the serve role announces the carpark's advertisements to (PICKUP_IPNI_INDEXERS), https:// base URLs such as https://cid.contact; empty: none."
  type        = list(string)
  default     = []
}

variable "serve_domain_name" {
  description = "Domain of serve_certificate_arn, pointed at the serve load balancer (output serve_dns_name) by you, for the serve_url output; null for the load balancer's name."
  type        = string
  default     = null
}
