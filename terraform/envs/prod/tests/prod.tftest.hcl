# The prod environment against a mocked AWS: its sizing. The wiring is
# modules/pickup's, tested there.
mock_provider "aws" {
  source = "../../modules/pickup/tests/mocks"
}

variables {
  name                               = "pickup-test"
  image_tag                          = "v0.1.0"
  eventlog_connection_string         = "kurrentdb+discover://admin:changeit@cluster.example:2113"
  eventlog_connection_string_version = 1
}

run "sizing" {
  command = apply

  assert {
    condition     = length(output.nat_public_ips) == 3
    error_message = "prod runs a NAT gateway in each of its three zones"
  }

  assert {
    condition     = module.pickup.protection == { views_deletion_protection = true, views_final_snapshot = true, buckets_kept = true, images_kept = true, secrets_recoverable = true }
    error_message = "prod is never disposable: its views, buckets, images and secrets must survive `terraform destroy`"
  }

  assert {
    condition     = module.pickup.fetchers_public
    error_message = "prod's fetchers must be dialable (public) by default"
  }
}

run "private_fetchers_need_delegates" {
  command = plan

  variables {
    fetchers_public = false
  }

  expect_failures = [var.delegates]
}
