# The prod environment against a mocked AWS: its sizing. The wiring is
# modules/pickup's, tested there.
mock_provider "aws" {
  source = "../../modules/pickup/tests/mocks"
}

variables {
  name      = "pickup-test"
  image_tag = "v0.1.0"
  # Ephemeral: terraform test's apply runs refuse it unset (null) after a
  # plan; unused with the PostgreSQL event log.
  eventlog_connection_string = ""
}

run "sizing" {
  command = apply

  assert {
    condition     = length(output.nat_public_ips) == 3
    error_message = "prod runs a NAT gateway in each of its three zones"
  }

  assert {
    condition     = module.pickup.protection == { views_deletion_protection = true, views_final_snapshot = true, eventlog_protected = true, buckets_kept = true, images_kept = true, secrets_recoverable = true }
    error_message = "prod is never disposable: its views, buckets, images and secrets must survive `terraform destroy`"
  }

  assert {
    condition     = module.pickup.fetchers_public
    error_message = "prod's fetchers must be dialable (public) by default"
  }

  assert {
    condition     = output.eventlog_cluster.backup_retention_days == 35 && module.pickup.eventlog == "postgres"
    error_message = "prod's event log is Aurora PostgreSQL by default, with the longest point-in-time recovery RDS keeps (35 days)"
  }

  assert {
    condition     = module.pickup.protection.eventlog_protected
    error_message = "prod's event log must be protected from deletion, with a final snapshot"
  }
}

run "private_fetchers_need_delegates" {
  command = plan

  variables {
    fetchers_public = false
  }

  expect_failures = [var.delegates]
}

run "serve" {
  command = apply

  assert {
    condition     = output.serve_url == "http://${output.serve_dns_name}" && module.pickup.serve.service_name == "pickup-test-serve"
    error_message = "prod must serve the carpark behind its load balancer, its URL an output"
  }

  assert {
    condition     = module.pickup.serve.environment["PICKUP_IPNI_INDEXERS"] == "https://cid.contact"
    error_message = "prod announces its advertisements to cid.contact by default (serve_ipni_indexers)"
  }

  assert {
    condition = (output.serve_libp2p_addrs == module.pickup.serve_libp2p_addrs && length(output.serve_libp2p_addrs) == 2 &&
      module.pickup.serve.secrets["PICKUP_SERVE_LIBP2P_KEY"] == output.serve_libp2p_key_secret_arn &&
    module.pickup.serve.environment["PICKUP_SERVE_PUBLIC_URL"] == output.serve_url)
    error_message = "prod's outputs must give the serve peer's libp2p addresses and the secret its key must be written to"
  }
}
