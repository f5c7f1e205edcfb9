output "staging_bucket" {
  description = "Name of the staging bucket (PICKUP_STAGING_BUCKET)."
  value       = aws_s3_bucket.staging.bucket
}

output "staging_bucket_arn" {
  description = "ARN of the staging bucket."
  value       = aws_s3_bucket.staging.arn
}

output "staging_prefix" {
  description = "Key prefix of staged CARs."
  value       = var.staging_prefix
}

output "staging_objects_arn" {
  description = "ARN pattern of the staged objects, for IAM policies: the staging prefix only."
  value       = "${aws_s3_bucket.staging.arn}/${var.staging_prefix}*"
}

output "carpark_bucket" {
  description = "Name of the carpark bucket (PICKUP_CARPARK_BUCKET)."
  value       = aws_s3_bucket.carpark.bucket
}

output "carpark_bucket_arn" {
  description = "ARN of the carpark bucket."
  value       = aws_s3_bucket.carpark.arn
}

output "carpark_objects_arn" {
  description = "ARN pattern of the objects in the carpark bucket, for IAM policies."
  value       = "${aws_s3_bucket.carpark.arn}/*"
}

output "force_destroy" {
  description = "Whether `terraform destroy` deletes either bucket with its objects."
  value       = aws_s3_bucket.staging.force_destroy || aws_s3_bucket.carpark.force_destroy
}

output "uploads_bucket" {
  description = "Name of the bucket of CAR uploads (PICKUP_UPLOADS_BUCKET): the staging bucket."
  value       = aws_s3_bucket.staging.bucket
}

output "uploads_bucket_arn" {
  description = "ARN of the bucket of CAR uploads."
  value       = aws_s3_bucket.staging.arn
}

output "uploads_prefix" {
  description = "Key prefix of CAR uploads (PICKUP_UPLOADS_PREFIX)."
  value       = var.uploads_prefix
}

output "uploads_objects_arn" {
  description = "ARN pattern of the CAR uploads, for IAM policies: the uploads prefix only."
  value       = "${aws_s3_bucket.staging.arn}/${var.uploads_prefix}*"
}
