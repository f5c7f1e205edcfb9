variable "name" {
  description = "Name of the deployment: prefixes every resource, and is the Deployment dimension of the metrics (PICKUP_DEPLOYMENT)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the tasks run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the projector, the admin task and private fetchers run in (they reach IPFS through the NAT gateways)."
  type        = list(string)
}

variable "fetchers_public" {
  description = "Run the fetchers in public_subnet_ids, each task with its own public IPv4 (assign_public_ip), dialable on the libp2p port 4001 (TCP and QUIC) and announcing that address (PICKUP_LIBP2P_PUBLIC_IP=ecs). False keeps them in subnet_ids, undialable from outside the VPC: the gateway then needs a static delegates list."
  type        = bool
  default     = true
}

variable "public_subnet_ids" {
  description = "Public subnets (default route to an internet gateway) the fetchers run in when fetchers_public."
  type        = list(string)
  default     = []

  validation {
    condition     = !var.fetchers_public || length(var.public_subnet_ids) > 0
    error_message = "fetchers_public needs public_subnet_ids: the subnets whose route table leads to an internet gateway."
  }
}

variable "ipv6" {
  description = "Whether the VPC has IPv6: the libp2p port is then open to ::/0 too."
  type        = bool
  default     = false
}

variable "enable_execute_command" {
  description = "ECS Exec into the fetcher and projector tasks (aws ecs execute-command). The SSM agent ECS Exec starts needs a writable root file system, so the services' containers lose their read-only root while this is on."
  type        = bool
  default     = false
}

variable "image_tag" {
  description = "Tag of the pickup image in this module's ECR repository to run (the repository's tags are immutable: push a new tag for each release)."
  type        = string
}

variable "cpu_architecture" {
  description = "CPU architecture of the image and of the Fargate tasks: X86_64 or ARM64 (build the image for the same one)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "eventlog_secret_arn" {
  description = "ARN of the event log's secret: with eventlog_url, the PostgreSQL log's app role (JSON username and password), PICKUP_EVENTLOG_SECRET_ARN read by each process; without, an EventStoreDB connection string, injected by ECS as PICKUP_EVENTLOG."
  type        = string
}

variable "eventlog_url" {
  description = "The PostgreSQL event log on its cluster's writer as the app role, a postgres:// URL without password (PICKUP_EVENTLOG of every role); null for an EventStoreDB log, whose connection string eventlog_secret_arn holds."
  type        = string
  default     = null

  validation {
    condition     = var.eventlog_url == null || can(regex("^postgres(ql)?://[^:@/]+@[^/]+/", var.eventlog_url))
    error_message = "eventlog_url must be a postgres:// URL of the event log's writer naming the app role and no password (the secret gives it)."
  }
}

variable "eventlog_setup_url" {
  description = "The PostgreSQL event log's writer without user or password (PICKUP_EVENTLOG of `pickup events setup`, the projector task's first container); required with eventlog_url."
  type        = string
  default     = null

  validation {
    condition     = (var.eventlog_setup_url == null) == (var.eventlog_url == null) && (var.eventlog_setup_url == null || can(regex("^postgres(ql)?://[^@/]+/", var.eventlog_setup_url)))
    error_message = "eventlog_setup_url must be given exactly when eventlog_url is, as a postgres:// URL of the writer with no user or password."
  }
}

variable "eventlog_admin_secret_arn" {
  description = "ARN of the PostgreSQL event log's RDS-managed master secret, injected into `pickup events setup` only (PICKUP_EVENTLOG_ADMIN_SECRET); required with eventlog_url."
  type        = string
  default     = null

  validation {
    condition     = (var.eventlog_admin_secret_arn == null) == (var.eventlog_url == null) && var.eventlog_admin_secret_arn != var.eventlog_secret_arn
    error_message = "eventlog_admin_secret_arn must be given exactly when eventlog_url is, and must be the master secret, not the app role's (eventlog_secret_arn)."
  }
}

variable "views_url" {
  description = "The views as the application role, a postgres:// URL without password (PICKUP_VIEWS of every role)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:@/]+@", var.views_url))
    error_message = "views_url must be a postgres:// URL with a user and without a password."
  }
}

variable "views_secret_arn" {
  description = "ARN of the application role's secret, JSON {\"username\",\"password\"}: PICKUP_VIEWS_SECRET_ARN of every role (read by the process, again for each new connection) and PICKUP_VIEWS_APP_SECRET of `pickup views setup`."
  type        = string
}

variable "views_admin_secret_arn" {
  description = "ARN of the RDS-managed master secret, injected into the projector task's views-setup container only (PICKUP_VIEWS_ADMIN_SECRET); no task role may read it."
  type        = string

  validation {
    condition     = var.views_admin_secret_arn != var.views_secret_arn
    error_message = "views_admin_secret_arn must be the master secret, not the application role's."
  }
}

variable "views_setup_url" {
  description = "The cluster's writer (not the RDS Proxy), a postgres:// URL without password, for `pickup views setup` (PICKUP_VIEWS of the views-setup container)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:@/]+(:[0-9]+)?/", var.views_setup_url)) && !strcontains(var.views_setup_url, ".proxy-")
    error_message = "views_setup_url must be a postgres:// URL of the cluster's writer, without user or password, never the RDS Proxy."
  }
}

variable "libp2p_seed_version" {
  description = "Version of the generated libp2p seed: raise it by one to generate a new one (every fetcher then gets a new peer id)."
  type        = number
  default     = 1
}

variable "webhook_key_version" {
  description = "Version of the generated webhook key: raise it by one to generate a new one (tenants' receivers must then be given it)."
  type        = number
  default     = 1
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted generated secret (libp2p seed, webhook key) can be recovered; 0 deletes at once (disposable deployments)."
  type        = number
  default     = 30
}

variable "force_delete" {
  description = "Let `terraform destroy` delete the ECR repository with its images (disposable deployments)."
  type        = bool
  default     = false
}

variable "staging_bucket" {
  description = "Name of the staging bucket (PICKUP_STAGING_BUCKET)."
  type        = string
}

variable "staging_bucket_arn" {
  description = "ARN of the staging bucket."
  type        = string
}

variable "staging_prefix" {
  description = "Key prefix of staged CARs (PICKUP_STAGING_PREFIX): the fetchers may touch nothing else in the staging bucket."
  type        = string
}

variable "carpark_bucket" {
  description = "Name of the carpark bucket (PICKUP_CARPARK_BUCKET)."
  type        = string
}

variable "carpark_bucket_arn" {
  description = "ARN of the carpark bucket."
  type        = string
}

variable "s3_region" {
  description = "Region of the buckets (PICKUP_S3_REGION); null for this deployment's region."
  type        = string
  default     = null
}

variable "batch_size" {
  description = "Pins fetched at once per task (PICKUP_BATCH_SIZE)."
  type        = number
  default     = 10
}

variable "max_car_bytes" {
  description = "Bigger DAGs fail permanently as too_big (PICKUP_MAX_CAR_BYTES)."
  type        = number
  default     = 33285996544
}

variable "fetch_timeout" {
  description = "Longest attempt, as a Go duration (PICKUP_FETCH_TIMEOUT). Task scale-in protection lasts this long at most."
  type        = string
  default     = "4h"

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.fetch_timeout)) && var.fetch_timeout != ""
    error_message = "fetch_timeout must be a duration in hours, minutes and seconds, such as 4h or 90m."
  }
}

variable "fetch_chunk_timeout" {
  description = "Longest wait without a byte, as a Go duration (PICKUP_FETCH_CHUNK_TIMEOUT)."
  type        = string
  default     = "2m"
}

variable "max_attempts" {
  description = "Failed attempts before a pin is dead-lettered (PICKUP_MAX_ATTEMPTS, projector)."
  type        = number
  default     = 5
}

variable "notify_on_pinned" {
  description = "Whether the projector tells notify_topic_arn of every validated CAR. A separate flag because the topic's ARN may not be known until it is created."
  type        = bool
  default     = false
}

variable "notify_topic_arn" {
  description = "SNS topic the projector tells of every validated CAR (PICKUP_NOTIFY_TOPIC_ARN), when notify_on_pinned."
  type        = string
  default     = null
}

variable "fetcher_environment" {
  description = "More PICKUP_* settings for the fetchers (docs/configuration.md), such as PICKUP_TRUSTLESS_GATEWAYS. They cannot replace the ones this module sets."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.fetcher_environment) : can(regex("^PICKUP_[A-Z0-9_]+$", k))])
    error_message = "fetcher_environment may only hold PICKUP_* variables."
  }
}

variable "projector_environment" {
  description = "More PICKUP_* settings for the projector, such as PICKUP_RETRY_BASE_DELAY. They cannot replace the ones this module sets."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.projector_environment) : can(regex("^PICKUP_[A-Z0-9_]+$", k))])
    error_message = "projector_environment may only hold PICKUP_* variables."
  }
}

variable "log_level" {
  description = "PICKUP_LOG_LEVEL of both services."
  type        = string
  default     = "info"
}

variable "fetcher_cpu" {
  description = "CPU units of a fetcher task (1024 is one vCPU)."
  type        = number
  default     = 1024
}

variable "fetcher_memory" {
  description = "Memory of a fetcher task in MiB."
  type        = number
  default     = 2048
}

variable "projector_cpu" {
  description = "CPU units of the projector task."
  type        = number
  default     = 512
}

variable "projector_memory" {
  description = "Memory of the projector task in MiB."
  type        = number
  default     = 1024
}

variable "fetcher_min_count" {
  description = "Fewest fetcher tasks, however empty the queue."
  type        = number
  default     = 1

  validation {
    condition     = var.fetcher_min_count >= 1
    error_message = "fetcher_min_count must be at least 1: scaling divides the backlog by the running tasks."
  }
}

variable "fetcher_max_count" {
  description = "Most fetcher tasks, however long the queue."
  type        = number
  default     = 10

  validation {
    condition     = var.fetcher_max_count >= var.fetcher_min_count
    error_message = "fetcher_max_count must be at least fetcher_min_count."
  }

  validation {
    condition     = var.fetcher_max_count <= 20
    error_message = "fetcher_max_count must be at most 20: fetchers lease one of 20 libp2p identity slots each, so that each live fetcher has its own stable peer id."
  }
}

variable "backlog_per_task" {
  description = "Queued pins per running fetcher that autoscaling aims at (the Backlog metric divided by the running tasks)."
  type        = number
  default     = 20

  validation {
    condition     = var.backlog_per_task > 0
    error_message = "backlog_per_task must be positive."
  }
}

variable "log_retention_days" {
  description = "Days the tasks' logs are kept."
  type        = number
  default     = 30
}

variable "image_retention_count" {
  description = "Images the ECR repository keeps; older ones are deleted."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "uploads_bucket" {
  description = "Bucket of CAR uploads (PICKUP_UPLOADS_BUCKET), which the gateway writes and the fetchers read and delete; null: the fetchers read no uploads (a pin that came with one fails)."
  type        = string
  default     = null
}

variable "uploads_bucket_arn" {
  description = "ARN of uploads_bucket; required with it."
  type        = string
  default     = null

  validation {
    condition     = (var.uploads_bucket == null) == (var.uploads_bucket_arn == null)
    error_message = "uploads_bucket and uploads_bucket_arn go together: give both, or neither."
  }
}

variable "uploads_prefix" {
  description = "Key prefix of CAR uploads in uploads_bucket (PICKUP_UPLOADS_PREFIX): the fetchers may read and delete nothing else there."
  type        = string
  default     = "uploads/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.uploads_prefix))
    error_message = "uploads_prefix must be a relative key prefix ending in \"/\", such as \"uploads/\"."
  }
}
