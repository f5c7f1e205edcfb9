mock_provider "aws" {
  # An empty filter reads back as no prefix, as S3 answers it (unmocked,
  # the computed prefix would be a random string).
  mock_resource "aws_s3_bucket_lifecycle_configuration" {
    defaults = {
      rule = { prefix = "", filter = { prefix = "" } }
    }
  }
}

variables {
  staging_bucket = "pickup-test-staging"
  carpark_bucket = "pickup-test-carpark"
}

override_resource {
  target = aws_s3_bucket.staging
  values = {
    id  = "pickup-test-staging"
    arn = "arn:aws:s3:::pickup-test-staging"
  }
}

override_resource {
  target = aws_s3_bucket.carpark
  values = {
    id  = "pickup-test-carpark"
    arn = "arn:aws:s3:::pickup-test-carpark"
  }
}

run "buckets_are_private_and_encrypted" {
  command = apply

  assert {
    condition = alltrue([for b in aws_s3_bucket_public_access_block.this :
    b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets])
    error_message = "both buckets must block every kind of public access"
  }

  assert {
    condition     = toset(keys(aws_s3_bucket_public_access_block.this)) == toset(["staging", "carpark"])
    error_message = "public access must be blocked on both buckets"
  }

  assert {
    condition = alltrue([for e in aws_s3_bucket_server_side_encryption_configuration.this :
    one([for r in e.rule : one(r.apply_server_side_encryption_by_default).sse_algorithm]) == "AES256"])
    error_message = "both buckets must encrypt objects at rest"
  }

  assert {
    condition = alltrue([for o in aws_s3_bucket_ownership_controls.this :
    one(o.rule).object_ownership == "BucketOwnerEnforced"])
    error_message = "ACLs must be disabled on both buckets"
  }

  assert {
    condition     = one(aws_s3_bucket_versioning.carpark.versioning_configuration).status == "Enabled"
    error_message = "the carpark bucket must be versioned"
  }

  assert {
    condition     = !aws_s3_bucket.carpark.force_destroy && !aws_s3_bucket.staging.force_destroy
    error_message = "buckets must not be destroyable with their objects by default"
  }
}

run "staging_forgets_after_a_day" {
  command = apply

  assert {
    condition     = one(one(aws_s3_bucket_lifecycle_configuration.staging.rule).expiration).days == 1
    error_message = "staged objects must expire after a day"
  }

  assert {
    condition     = one(one(aws_s3_bucket_lifecycle_configuration.staging.rule).abort_incomplete_multipart_upload).days_after_initiation == 1
    error_message = "incomplete multipart uploads to staging must be aborted after a day"
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.staging.rule).status == "Enabled"
    error_message = "the staging lifecycle rule must be enabled"
  }

  assert {
    condition = anytrue([for r in aws_s3_bucket_lifecycle_configuration.carpark.rule :
    r.status == "Enabled" && length(r.abort_incomplete_multipart_upload) == 1])
    error_message = "the carpark must abort incomplete multipart uploads"
  }

  assert {
    condition = alltrue([for r in aws_s3_bucket_lifecycle_configuration.carpark.rule :
    length(r.expiration) == 0])
    error_message = "current CARs in the carpark must never expire"
  }
}

run "policies_refuse_plain_http" {
  command = apply

  assert {
    condition = jsondecode(aws_s3_bucket_policy.this["carpark"].policy).Statement == [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = ["arn:aws:s3:::pickup-test-carpark", "arn:aws:s3:::pickup-test-carpark/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
    error_message = "the carpark policy must deny every request without TLS, and nothing else"
  }

  assert {
    condition     = jsondecode(aws_s3_bucket_policy.this["staging"].policy).Statement[0].Resource == ["arn:aws:s3:::pickup-test-staging", "arn:aws:s3:::pickup-test-staging/*"]
    error_message = "the staging policy must name the staging bucket"
  }

  assert {
    condition     = output.staging_objects_arn == "arn:aws:s3:::pickup-test-staging/staging/*"
    error_message = "staging_objects_arn must cover the staging prefix only"
  }
}

run "prefix_must_end_in_slash" {
  command = plan

  variables {
    staging_prefix = "staging"
  }

  expect_failures = [var.staging_prefix]
}

run "car_uploads_in_staging" {
  command = apply

  assert {
    condition     = output.uploads_bucket == "pickup-test-staging" && output.uploads_prefix == "uploads/" && output.uploads_objects_arn == "arn:aws:s3:::pickup-test-staging/uploads/*"
    error_message = "CAR uploads must live in the staging bucket under uploads/, whose lifecycle rule expires what a sweep missed"
  }

  assert {
    condition = anytrue([for r in aws_s3_bucket_lifecycle_configuration.staging.rule :
      r.status == "Enabled" && try(startswith(var.uploads_prefix, r.prefix), true) &&
      one(r.expiration).days == 1 && one(r.abort_incomplete_multipart_upload).days_after_initiation == 1 &&
      alltrue([for f in r.filter : startswith(var.uploads_prefix, f.prefix) && length(f.and) == 0 && length(f.tag) == 0 &&
    f.object_size_greater_than == 0 && f.object_size_less_than == 0])])
    error_message = "a staging lifecycle rule must take in the uploads prefix (no narrower filter): CAR uploads a sweep missed must expire, and unfinished multipart uploads be aborted, after a day"
  }
}

run "uploads_prefix_overlapping_staging" {
  command = plan

  variables {
    uploads_prefix = "staging/"
  }

  expect_failures = [aws_s3_bucket_lifecycle_configuration.staging]
}
