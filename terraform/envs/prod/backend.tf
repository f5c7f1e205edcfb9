# State lives in S3, with native locking. The bucket is the operator's, made
# once by hand or by a bootstrap stack; give its settings at init:
#
#   terraform init -backend-config=backend.hcl
#
# with backend.hcl holding bucket, key, region and use_lockfile = true (see
# backend.hcl.example).
terraform {
  backend "s3" {}
}
