# The dev environment against a mocked AWS: its sizing. The wiring is
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
    condition     = length(output.nat_public_ips) == 1
    error_message = "dev runs one NAT gateway"
  }

  assert {
    condition     = module.pickup.protection == { views_deletion_protection = false, views_final_snapshot = false, eventlog_protected = false, buckets_kept = false, images_kept = false, secrets_recoverable = false }
    error_message = "dev is disposable: `terraform destroy` must take everything, pushed images and written CARs included"
  }

  assert {
    condition     = module.pickup.fetchers_public
    error_message = "dev's fetchers must be dialable (public), so that the gateway has delegates without configuration"
  }

  assert {
    condition     = module.pickup.eventlog == "postgres" && output.eventlog_cluster.backup_retention_days >= 7 && output.eventlog_cluster.backup_retention_days < 35
    error_message = "dev's event log is Aurora PostgreSQL by default, with backups (point-in-time recovery) kept a week"
  }

  assert {
    condition     = output.admin_task.task_definition == "pickup-test-admin" && output.admin_task.container == "admin" && length(output.admin_task.subnets) == 2
    error_message = "the admin task's run-task settings must be an output"
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
    error_message = "dev must serve the carpark behind its load balancer, its URL an output"
  }

  assert {
    condition     = !contains(keys(module.pickup.serve.environment), "PICKUP_IPNI_INDEXERS")
    error_message = "dev announces its advertisements to no indexer by default (serve_ipni_indexers)"
  }

  assert {
    condition = (output.serve_libp2p_addrs == module.pickup.serve_libp2p_addrs && length(output.serve_libp2p_addrs) == 2 &&
      module.pickup.serve.secrets["PICKUP_SERVE_LIBP2P_KEY"] == output.serve_libp2p_key_secret_arn &&
    module.pickup.serve.environment["PICKUP_SERVE_PUBLIC_URL"] == output.serve_url)
    error_message = "dev's outputs must give the serve peer's libp2p addresses and the secret its key must be written to"
  }
}
