provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "pickup"
      Deployment  = var.name
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
