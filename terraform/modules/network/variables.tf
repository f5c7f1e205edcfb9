variable "name" {
  description = "Name of the deployment; prefixes every resource's Name tag."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 range of the VPC. Public subnets take /24s from its first sixteenth, private subnets one sixteenth each after it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 20
    error_message = "cidr_block must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "azs" {
  description = "Availability zones to spread the subnets over, at least two (RDS and the Lambda want two)."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2 && length(var.azs) <= 15 && length(distinct(var.azs)) == length(var.azs)
    error_message = "azs must name between 2 and 15 distinct availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, for development) instead of one per zone (survives the loss of a zone)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
