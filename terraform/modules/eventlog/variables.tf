variable "name" {
  description = "Name of the deployment; prefixes the cluster, its instances, subnet group, security group and secret."
  type        = string
}

variable "vpc_id" {
  description = "VPC the database runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the database, in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must name at least two subnets, in different availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect to the cluster (the Fargate tasks' and the gateway Lambda's): every role connects to the writer directly, no proxy."
  type        = list(string)
  default     = []
}

variable "database_name" {
  description = "Name of the database the event log lives in (schema pickup_events)."
  type        = string
  default     = "pickup_events"
}

variable "master_username" {
  description = "The cluster's master user, used only by `pickup events setup`. Its password is generated and rotated by RDS, kept in Secrets Manager, and never seen by Terraform."
  type        = string
  default     = "pickup_log"
}

variable "app_username" {
  description = "The event log's application role every pickup process logs in as; `pickup events setup` creates it with the password of its secret, granted only USAGE on the schema and SELECT, INSERT on the events."
  type        = string
  default     = "pickup_log_app"

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
  description = "Least Aurora capacity units the cluster scales down to. Not 0: the subscribers' LISTEN connections keep it awake anyway."
  type        = number
  default     = 0.5

  validation {
    condition     = var.min_capacity >= 0.5
    error_message = "min_capacity must be at least 0.5: the event log's subscribers never let it pause."
  }
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
  description = "Serverless v2 instances: one writer (every role's), the rest readers that can take over."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 15
    error_message = "instance_count must be between 1 and 15."
  }
}

variable "backup_retention_days" {
  description = "Days automated backups (and so point-in-time recovery) are kept: the log is the system of record."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35: the event log is the system of record, its backups and point-in-time recovery cannot be off."
  }
}

variable "preferred_backup_window" {
  description = "Daily UTC window of the automated backup (hh24:mi-hh24:mi); null lets RDS choose."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster. The event log is the system of record: nothing rebuilds it."
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
