variable "name" {
  description = "Name of the deployment; prefixes the cluster, the proxy and their security groups."
  type        = string
}

variable "vpc_id" {
  description = "VPC the database and its proxy run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the database and the proxy, in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must name at least two subnets, in different availability zones."
  }
}

variable "proxy_client_security_group_ids" {
  description = "Security groups allowed to connect to the RDS Proxy (the gateway Lambda's)."
  type        = list(string)
  default     = []
}

variable "direct_client_security_group_ids" {
  description = "Security groups allowed to connect to the cluster directly, bypassing the proxy (the Fargate tasks', whose connections are few and long-lived)."
  type        = list(string)
  default     = []
}

variable "database_name" {
  description = "Name of the database pickup's views live in."
  type        = string
  default     = "pickup"
}

variable "master_username" {
  description = "The cluster's master user, used only by `pickup views setup`. Its password is generated and rotated by RDS, kept in Secrets Manager, and never seen by Terraform."
  type        = string
  default     = "pickup"
}

variable "app_username" {
  description = "The application role every pickup process (and the RDS Proxy) logs in as; `pickup views setup` creates it with the password of its secret, granted only what the app needs."
  type        = string
  default     = "pickup_app"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.app_username))
    error_message = "app_username must be a PostgreSQL identifier: lowercase letters, digits and underscores, not starting with a digit."
  }
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted app-role secret can be recovered (0 deletes it at once, for disposable deployments)."
  type        = number
  default     = 30
}

variable "engine_version" {
  description = "Aurora PostgreSQL version."
  type        = string
  default     = "16.6"
}

variable "min_capacity" {
  description = "Least Aurora capacity units the cluster scales down to (0 lets an idle cluster pause)."
  type        = number
  default     = 0.5
}

variable "max_capacity" {
  description = "Most Aurora capacity units the cluster scales up to."
  type        = number
  default     = 4

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 256
    error_message = "max_capacity must be between 1 and 256."
  }
}

variable "instance_count" {
  description = "Serverless v2 instances: one writer, the rest readers that can take over."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 15
    error_message = "instance_count must be between 1 and 15."
  }
}

variable "backup_retention_days" {
  description = "Days automated backups are kept."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster. Views can be rebuilt from the event log, but that takes a replay."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Delete the cluster without a final snapshot."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
