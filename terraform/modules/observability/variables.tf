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
  description = "ARNs to notify when an alarm fires or clears, such as an SNS topic."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
