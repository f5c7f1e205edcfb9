variable "name" {
  description = "Name of the deployment: prefixes every resource, and is the Deployment dimension of the metrics (PICKUP_DEPLOYMENT)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the tasks run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in (they reach IPFS through the NAT gateways)."
  type        = list(string)
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
  description = "ARN of the secret holding the event log's connection string, injected as PICKUP_EVENTLOG."
  type        = string
}

variable "views_url" {
  description = "The views, as a postgres:// URL without password (PICKUP_VIEWS)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:@/]+@", var.views_url))
    error_message = "views_url must be a postgres:// URL with a user and without a password."
  }
}

variable "views_secret_arn" {
  description = "ARN of the RDS-managed secret of the views user; its password is injected as PGPASSWORD, which PostgreSQL clients use when the URL has none."
  type        = string
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
