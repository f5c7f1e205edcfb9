# The two buckets: staging holds CARs between upload and validation, and
# the CAR uploads tenants send (under uploads_prefix, until their pin is
# over), and forgets both after a day; carpark holds validated CARs,
# versioned. Both are private, encrypted at rest, owner-enforced (no ACLs)
# and refuse plain HTTP.

locals {
  buckets = {
    staging = aws_s3_bucket.staging
    carpark = aws_s3_bucket.carpark
  }
}

resource "aws_s3_bucket" "staging" {
  bucket        = var.staging_bucket
  force_destroy = var.force_destroy

  tags = merge(var.tags, { Name = var.staging_bucket, Role = "staging" })
}

resource "aws_s3_bucket" "carpark" {
  bucket        = var.carpark_bucket
  force_destroy = var.force_destroy

  tags = merge(var.tags, { Name = var.carpark_bucket, Role = "carpark" })
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "carpark" {
  bucket = aws_s3_bucket.carpark.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "staging" {
  bucket = aws_s3_bucket.staging.id

  lifecycle {
    precondition {
      condition     = !startswith(var.uploads_prefix, var.staging_prefix) && !startswith(var.staging_prefix, var.uploads_prefix)
      error_message = "uploads_prefix and staging_prefix must not overlap: the fetchers' rights on one would reach the other's keys."
    }
  }

  # One rule for every key: staged markers, and CAR uploads the fetchers'
  # sweep did not delete (an unfinished multipart upload of a gateway
  # killed mid-body included).
  rule {
    id     = "expire-staged-cars"
    status = "Enabled"

    filter {}

    expiration {
      days = var.staging_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.staging_expiration_days
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "carpark" {
  bucket = aws_s3_bucket.carpark.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.carpark_noncurrent_version_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.carpark]
}

# Refuse every request that does not come over TLS. Built with jsonencode
# rather than a policy document data source so that tests can read it.
resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets

  bucket = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [each.value.arn, "${each.value.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # A bucket policy put before the public access block could be judged
  # public in between.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
