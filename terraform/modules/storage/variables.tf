variable "staging_bucket" {
  description = "Name of the staging bucket, where fetchers write CARs before they are validated."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.staging_bucket))
    error_message = "staging_bucket must be a valid S3 bucket name."
  }
}

variable "carpark_bucket" {
  description = "Name of the carpark bucket, where validated CARs are kept as <carCid>/<carCid>.car."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.carpark_bucket))
    error_message = "carpark_bucket must be a valid S3 bucket name."
  }
}

variable "staging_prefix" {
  description = "Key prefix of staged CARs in the staging bucket; IAM policies grant the fetchers this prefix only."
  type        = string
  default     = "staging/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.staging_prefix))
    error_message = "staging_prefix must be a relative key prefix ending in \"/\", such as \"staging/\"."
  }
}

variable "staging_expiration_days" {
  description = "Days after which staged objects, and multipart uploads never completed, are deleted."
  type        = number
  default     = 1

  validation {
    condition     = var.staging_expiration_days >= 1 && floor(var.staging_expiration_days) == var.staging_expiration_days
    error_message = "staging_expiration_days must be a whole number of days, at least 1."
  }
}

variable "carpark_noncurrent_version_days" {
  description = "Days a replaced or deleted CAR's old version is kept in the versioned carpark bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.carpark_noncurrent_version_days >= 1
    error_message = "carpark_noncurrent_version_days must be at least 1."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the buckets with their objects. Leave false wherever the CARs matter."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "uploads_prefix" {
  description = "Key prefix of CAR uploads (PICKUP_UPLOADS_PREFIX) in the staging bucket: the gateway writes them, the fetchers read and delete them; the staging lifecycle rule expires what a sweep missed and aborts unfinished multipart uploads."
  type        = string
  default     = "uploads/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.uploads_prefix))
    error_message = "uploads_prefix must be a relative key prefix ending in \"/\", such as \"uploads/\"."
  }
}
