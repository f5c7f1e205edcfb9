variable "name" {
  description = "Name of the deployment: prefixes every resource, and is the Deployment dimension of the metrics (PICKUP_DEPLOYMENT)."
  type        = string

  validation {
    # The load balancer's and target group's names: at most 32 characters.
    condition     = length("${var.name}-serve") <= 32
    error_message = "name must be at most 26 characters: the load balancer is named <name>-serve, and AWS allows 32."
  }
}

variable "vpc_id" {
  description = "VPC the load balancer and the tasks run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the serve tasks run in (only the load balancer reaches them)."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets (default route to an internet gateway) of the internet-facing load balancer, in at least two zones."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "an Application Load Balancer needs public subnets in at least two availability zones."
  }
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the VPC's S3 gateway endpoint: the tasks' egress to the carpark."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the service runs in (the fetchers' and the projector's)."
  type        = string
}

variable "cluster_name" {
  description = "Name of that ECS cluster (autoscaling's resource id)."
  type        = string
}

variable "image" {
  description = "The pickup image the tasks run, repository URL and tag (the one the fetchers run)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding image, for the execution role to pull from."
  type        = string
}

variable "cpu_architecture" {
  description = "CPU architecture of the image and of the Fargate tasks: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "start_after" {
  description = "What must exist before the service starts: the projector service's name (its views-setup creates the block-location lookup's schema in the views' database)."
  type        = list(string)
  default     = []
}

variable "views_url" {
  description = "The views on the cluster's writer as the application role, a postgres:// URL without password (PICKUP_VIEWS)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:@/]+@", var.views_url)) && !strcontains(var.views_url, ".proxy-")
    error_message = "views_url must be a postgres:// URL of the cluster's writer with a user and without a password (the tasks' connections are few and long-lived: not the RDS Proxy)."
  }
}

variable "views_secret_arn" {
  description = "ARN of the views' application role secret (PICKUP_VIEWS_SECRET_ARN, read by the process for each new connection); never the master secret."
  type        = string
}

variable "views_security_group_id" {
  description = "Security group of the views' cluster: the tasks' egress on 5432 (the cluster must admit the tasks' security group, output security_group_id)."
  type        = string
}

variable "eventlog_url" {
  description = "The PostgreSQL event log on its cluster's writer as the app role, a postgres:// URL without password (PICKUP_EVENTLOG); null for an EventStoreDB log, whose connection string eventlog_secret_arn holds (injected by ECS)."
  type        = string
  default     = null

  validation {
    condition     = var.eventlog_url == null || can(regex("^postgres(ql)?://[^:@/]+@[^/]+/", var.eventlog_url))
    error_message = "eventlog_url must be a postgres:// URL of the event log's writer naming the app role and no password (the secret gives it)."
  }
}

variable "eventlog_secret_arn" {
  description = "ARN of the event log's secret: with eventlog_url the PostgreSQL log's app role (PICKUP_EVENTLOG_SECRET_ARN, read by the process); without, the EventStoreDB connection string (injected as PICKUP_EVENTLOG)."
  type        = string
}

variable "eventlog_security_group_id" {
  description = "Security group of the PostgreSQL event log's cluster, the tasks' egress on 5432; required with eventlog_url."
  type        = string
  default     = null

  validation {
    condition     = (var.eventlog_security_group_id == null) == (var.eventlog_url == null)
    error_message = "eventlog_security_group_id must be given exactly when eventlog_url is."
  }
}

variable "carpark_bucket" {
  description = "Name of the carpark bucket, read only (PICKUP_CARPARK_BUCKET)."
  type        = string
}

variable "carpark_bucket_arn" {
  description = "ARN of the carpark bucket."
  type        = string
}

variable "s3_region" {
  description = "Region of the carpark bucket (PICKUP_S3_REGION); null for the deployment's."
  type        = string
  default     = null
}

variable "max_requests" {
  description = "Requests one task serves at once; more wait or are refused (PICKUP_SERVE_MAX_REQUESTS)."
  type        = number
  default     = 256

  validation {
    condition     = var.max_requests >= 1 && floor(var.max_requests) == var.max_requests
    error_message = "max_requests must be a whole number, at least 1."
  }
}

variable "timeout" {
  description = "Longest time a request may take, a Go duration (PICKUP_SERVE_TIMEOUT); keep it under the load balancer's idle timeout (60 s)."
  type        = string
  default     = "30s"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", var.timeout))
    error_message = "timeout must be a Go duration, such as 30s or 1m30s."
  }
}

variable "max_dag_bytes" {
  description = "Most bytes of DAG a deserialized (UnixFS) response may read (PICKUP_SERVE_MAX_DAG_BYTES); 1 GiB by default."
  type        = number
  default     = 1073741824

  validation {
    condition     = var.max_dag_bytes >= 1 && floor(var.max_dag_bytes) == var.max_dag_bytes
    error_message = "max_dag_bytes must be a whole number of bytes, at least 1."
  }
}

variable "ipni_indexers" {
  description = "Base URLs of the IPNI indexers the serve role announces its advertisements to (PICKUP_IPNI_INDEXERS, comma-separated; unset when empty: announced to none), such as https://cid.contact. HTTPS only: the tasks reach the internet on 443 alone."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for u in var.ipni_indexers : can(regex("^https://[^,/\\s]+(/[^,\\s]*)?$", u))])
    error_message = "ipni_indexers must be https:// URLs, without commas (the tasks reach the internet on HTTPS only)."
  }
}

variable "secret_recovery_window_in_days" {
  description = "Days the deleted peer key secret (<name>/serve-libp2p-key) can be recovered; 0 deletes it at once (disposable deployments)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "secret_recovery_window_in_days must be 0 or between 7 and 30, as Secrets Manager allows."
  }
}

variable "environment" {
  description = "Extra environment of the serve container (PICKUP_* settings); the wiring's own settings win over these."
  type        = map(string)
  default     = {}
}

variable "cpu" {
  description = "CPU units of a serve task (1024 = 1 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Memory of a serve task, in MiB."
  type        = number
  default     = 512
}

variable "min_count" {
  description = "Fewest serve tasks, however idle (two: one per zone survives the loss of a task or a zone)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_count >= 1 && floor(var.min_count) == var.min_count
    error_message = "min_count must be a whole number, at least 1: the load balancer needs a task to send requests to."
  }
}

variable "max_count" {
  description = "Most serve tasks autoscaling may run."
  type        = number
  default     = 10

  validation {
    condition     = var.max_count >= var.min_count && var.max_count <= 100 && floor(var.max_count) == var.max_count
    error_message = "max_count must be a whole number between min_count and 100."
  }
}

variable "requests_per_target" {
  description = "Requests per task per minute autoscaling keeps to (ALBRequestCountPerTarget's target)."
  type        = number
  default     = 1000

  validation {
    condition     = var.requests_per_target > 0
    error_message = "requests_per_target must be positive."
  }
}

variable "cpu_target" {
  description = "Average CPU of the tasks, in percent, autoscaling keeps to (ECSServiceAverageCPUUtilization's target)."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target > 0 && var.cpu_target <= 100
    error_message = "cpu_target must be a percentage, above 0 and at most 100."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on 443 (HTTP on 80 then redirects to it); null for HTTP only."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "Domain the certificate names and that points at the load balancer (a CNAME or alias of your own), for the url output; null for the load balancer's DNS name."
  type        = string
  default     = null

  validation {
    condition     = var.domain_name == null || var.certificate_arn != null
    error_message = "domain_name needs certificate_arn: the load balancer serves a domain of its own over HTTPS only."
  }
}

variable "ssl_policy" {
  description = "The HTTPS listener's TLS policy."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "server_errors_threshold" {
  description = "Alarm when the tasks, or the load balancer itself, answer more 5xx than this in five minutes."
  type        = number
  default     = 10
}

variable "alarm_actions" {
  description = "ARNs told when an alarm changes state (the deployment's alarm topic)."
  type        = list(string)
  default     = []
}

variable "log_level" {
  description = "PICKUP_LOG_LEVEL of the serve tasks."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days the serve log group keeps its events."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
