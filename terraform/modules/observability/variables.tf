variable "name" {
  description = "Name of the deployment: prefixes the alarms and the dashboard, and is the Deployment dimension of pickup's metrics."
  type        = string
}

variable "function_name" {
  description = "Name of the gateway Lambda."
  type        = string
}

variable "cluster_name" {
  description = "Name of the ECS cluster."
  type        = string
}

variable "fetcher_service_name" {
  description = "Name of the fetchers' ECS service."
  type        = string
}

variable "projector_service_name" {
  description = "Name of the projector's ECS service."
  type        = string
}

variable "serve_service_name" {
  description = "Name of the serve ECS service (`pickup serve`), alarmed on and shown as the other services; null without one."
  type        = string
  default     = null
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster, whose failed service tasks are told to the alarm actions."
  type        = string
}

variable "views_cluster_identifier" {
  description = "Identifier of the views' Aurora cluster."
  type        = string
}

variable "views_proxy_name" {
  description = "Name of the views' RDS Proxy."
  type        = string
}

variable "views_cpu_threshold" {
  description = "Alarm when the views cluster's CPU stays above this percentage for 15 minutes."
  type        = number
  default     = 80
}

variable "views_freeable_memory_threshold_bytes" {
  description = "Alarm when the views cluster's freeable memory stays below this many bytes for 15 minutes."
  type        = number
  default     = 268435456
}

variable "views_capacity_threshold_percent" {
  description = "Alarm when the views cluster stays above this percentage of its most capacity units (ACUUtilization) for 15 minutes."
  type        = number
  default     = 90

  validation {
    condition     = var.views_capacity_threshold_percent > 0 && var.views_capacity_threshold_percent <= 100
    error_message = "views_capacity_threshold_percent must be a percentage."
  }
}

variable "views_connections_threshold" {
  description = "Alarm when the views cluster holds more connections than this (set it below the cluster's max_connections, which grows with its most capacity units)."
  type        = number
}

variable "proxy_client_connections_threshold" {
  description = "Alarm when the RDS Proxy holds more client connections than this."
  type        = number
  default     = 1000
}

variable "proxy_borrow_latency_threshold_ms" {
  description = "Alarm when borrowing a connection from the RDS Proxy takes longer than this many milliseconds on average for 15 minutes."
  type        = number
  default     = 100
}

variable "oldest_queued_age_threshold_seconds" {
  description = "Alarm when the oldest queued pin has waited longer than this."
  type        = number
  default     = 3600

  validation {
    condition     = var.oldest_queued_age_threshold_seconds > 0
    error_message = "oldest_queued_age_threshold_seconds must be positive."
  }
}

variable "api_errors_threshold" {
  description = "Alarm when the API answers more than this many 5xx in five minutes."
  type        = number
  default     = 5
}

variable "lambda_errors_threshold" {
  description = "Alarm when the gateway Lambda fails (crashes, timeouts) more than this many times in five minutes."
  type        = number
  default     = 0
}

variable "alarm_actions" {
  description = "ARNs to notify when an alarm fires or clears, and of every failed service task (EventBridge targets), such as an SNS topic whose policy lets cloudwatch.amazonaws.com and events.amazonaws.com publish."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
