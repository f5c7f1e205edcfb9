variable "name" {
  description = "Name of the deployment; the secret is named <name>/eventlog unless secret_name says otherwise."
  type        = string
}

variable "secret_name" {
  description = "Name of the Secrets Manager secret holding the event log's connection string. Null for <name>/eventlog."
  type        = string
  default     = null
}

variable "connection_string" {
  description = "The EventStoreDB/KurrentDB connection string (esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://). Ephemeral: it is written to the secret as a write-only value and never stored in Terraform's state or plan. Leave null to put the value in the secret yourself."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.connection_string == null || can(regex("^(esdb|kurrentdb)(\\+discover)?://", var.connection_string))
    error_message = "connection_string must start with esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://."
  }
}

variable "connection_string_version" {
  description = "Version of connection_string: 0 leaves the secret's value to the operator; raise it by one each time connection_string changes, since Terraform cannot see a write-only value change."
  type        = number
  default     = 0

  validation {
    condition     = var.connection_string_version >= 0 && floor(var.connection_string_version) == var.connection_string_version
    error_message = "connection_string_version must be a whole number, 0 or more."
  }
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (0 deletes it at once)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
