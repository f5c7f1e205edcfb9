# The whole deployment, planned and applied against a mocked AWS: checks that
# the modules are wired to each other as pickup's configuration expects.
mock_provider "aws" {
  source = "./tests/mocks"
}

# The event log's cluster has endpoints and a master secret of its own,
# told apart from the views'.
override_resource {
  target = module.eventlog[0].aws_rds_cluster.this
  values = {
    endpoint           = "pickup-test-eventlog.cluster-def.us-east-1.rds.amazonaws.com"
    master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-def", kms_key_id = "", secret_status = "active" }]
  }
}

variables {
  name              = "pickup-test"
  az_count          = 2
  vpc_cidr          = "10.40.0.0/16"
  fetcher_max_count = 4
  image_tag         = "v0.1.0"
  notify_on_pinned  = true
  # Ephemeral: terraform test's apply runs refuse it unset (null) after a
  # plan; unused with the PostgreSQL event log.
  eventlog_connection_string = ""
}

run "wiring" {
  command = apply

  assert {
    condition     = module.gateway.environment["PICKUP_EVENTLOG_SECRET_ARN"] == module.eventlog[0].app_secret_arn && module.gateway.environment["PICKUP_EVENTLOG"] == module.eventlog[0].url
    error_message = "the gateway must reach the PostgreSQL event log on its writer as the log's app role, with the app role's secret"
  }

  assert {
    condition = alltrue([for env in [module.fetchers.fetcher_environment, module.fetchers.projector_environment] :
      env["PICKUP_EVENTLOG"] == "postgres://pickup_log_app@pickup-test-eventlog.cluster-def.us-east-1.rds.amazonaws.com:5432/pickup_events?sslmode=require" &&
    env["PICKUP_EVENTLOG_SECRET_ARN"] == module.eventlog[0].app_secret_arn])
    error_message = "the subscribers (fetchers, projector) must reach the event log on its cluster's writer directly (never a proxy, which LISTEN would pin), as the log's app role"
  }

  assert {
    condition     = alltrue([for env in [module.gateway.environment, module.fetchers.fetcher_environment, module.fetchers.projector_environment] : env["PICKUP_EVENTLOG_SECRET_ARN"] != module.eventlog[0].master_secret_arn && env["PICKUP_EVENTLOG_SECRET_ARN"] != module.views.app_secret_arn])
    error_message = "the roles must log in to the event log as its app role, never with the master secret nor the views' secret"
  }

  assert {
    condition     = alltrue([for task, s in module.fetchers.secrets : !contains(keys(s), "PICKUP_EVENTLOG")])
    error_message = "with the PostgreSQL event log no container may be injected a connection string: each reads the app role's secret itself"
  }

  assert {
    condition     = module.fetchers.secrets["events-setup"] == { PICKUP_EVENTLOG_ADMIN_SECRET = module.eventlog[0].master_secret_arn, PICKUP_EVENTLOG_APP_SECRET = module.eventlog[0].app_secret_arn } && module.eventlog[0].master_secret_arn == "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-def"
    error_message = "events-setup must be given the event log cluster's RDS-managed master secret and the log's app role secret"
  }

  assert {
    condition     = one([for c in module.fetchers.container_definitions["projector"] : c if c.name == "events-setup"]).environment == [{ name = "PICKUP_EVENTLOG", value = "postgres://pickup-test-eventlog.cluster-def.us-east-1.rds.amazonaws.com:5432/pickup_events?sslmode=require" }, { name = "PICKUP_LOG_LEVEL", value = "info" }]
    error_message = "events-setup must reach the event log cluster's writer, with no user (the master secret gives it)"
  }

  assert {
    condition     = alltrue(flatten([for t, p in module.fetchers.task_policies : [for st in p.Statement : !contains(st.Resource, module.eventlog[0].master_secret_arn)]])) && alltrue([for t, p in module.fetchers.task_policies : contains(flatten([for st in p.Statement : st.Resource]), module.eventlog[0].app_secret_arn)])
    error_message = "every task role must read the event log's app secret, and none its master secret"
  }

  assert {
    condition = (
      [for c in module.fetchers.container_definitions["projector"] : c.name] == ["events-setup", "views-setup", "projector"] &&
      one([for c in module.fetchers.container_definitions["projector"] : c if c.name == "events-setup"]).essential == false &&
      one([for c in module.fetchers.container_definitions["projector"] : c if c.name == "events-setup"]).command == ["events", "setup"] &&
      lookup(one([for c in module.fetchers.container_definitions["projector"] : c if c.name == "views-setup"]), "dependsOn", []) == [{ containerName = "events-setup", condition = "SUCCESS" }] &&
      contains(lookup(one([for c in module.fetchers.container_definitions["projector"] : c if c.name == "projector"]), "dependsOn", []), { containerName = "events-setup", condition = "SUCCESS" })
    )
    error_message = "events-setup (`pickup events setup`, not essential) must run first in the projector task, and views-setup and the projector only once it has succeeded"
  }

  assert {
    condition     = module.eventlog[0].client_security_group_ids == [module.fetchers.task_security_group_id, module.gateway.security_group_id, module.serve.security_group_id]
    error_message = "the event log's cluster must admit the tasks, the gateway and the serve tasks, and no one else"
  }

  assert {
    condition     = output.eventlog_cluster.backup_retention_days == 14 && output.eventlog == "postgres"
    error_message = "the PostgreSQL event log is the default, with two weeks of backups (point-in-time recovery) by default"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_VIEWS"] == "postgres://pickup_app@pickup-test-views.proxy-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "the gateway must reach the views through the RDS Proxy, as the app role"
  }

  assert {
    condition = alltrue([for env in [module.gateway.environment, module.fetchers.fetcher_environment, module.fetchers.projector_environment] :
    env["PICKUP_VIEWS_SECRET_ARN"] == module.views.app_secret_arn && env["PICKUP_VIEWS_SECRET_ARN"] != module.views.master_secret_arn])
    error_message = "the gateway, the fetchers and the projector must log in to the views as the app role, never with the master secret"
  }

  assert {
    condition     = !contains(keys(module.gateway.environment), "PICKUP_DELEGATES")
    error_message = "with public fetchers and no static delegates the gateway answers with the live fetchers: PICKUP_DELEGATES must be unset"
  }

  assert {
    condition     = module.fetchers.fetcher_subnet_ids == toset(module.network.public_subnet_ids) && module.fetchers.fetcher_environment["PICKUP_LIBP2P_PUBLIC_IP"] == "ecs"
    error_message = "public fetchers must run in the network's public subnets and discover their public address"
  }

  assert {
    condition = (lookup(module.gateway.environment, "PICKUP_UPLOADS_BUCKET", "") == module.storage.staging_bucket &&
      lookup(module.fetchers.fetcher_environment, "PICKUP_UPLOADS_BUCKET", "") == module.storage.staging_bucket &&
      lookup(module.gateway.environment, "PICKUP_UPLOADS_PREFIX", "") == "uploads/" &&
    lookup(module.fetchers.fetcher_environment, "PICKUP_UPLOADS_PREFIX", "") == "uploads/")
    error_message = "the gateway and the fetchers must share one uploads area: the staging bucket under uploads/ (its lifecycle rule expires strays)"
  }

  assert {
    condition     = module.gateway.environment["PICKUP_DEPLOYMENT"] == "pickup-test" && module.gateway.environment["PICKUP_EMF"] == "true"
    error_message = "the gateway must publish EMF metrics under this deployment's name"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_STAGING_BUCKET"] == "pickup-test-staging-111122223333" && module.fetchers.fetcher_environment["PICKUP_CARPARK_BUCKET"] == "pickup-test-carpark-111122223333"
    error_message = "the fetchers must write to this deployment's buckets"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_S3_REGION"] == "us-east-1"
    error_message = "the fetchers must be told the buckets' region"
  }

  assert {
    condition     = module.fetchers.secrets["views-setup"] == { PICKUP_VIEWS_ADMIN_SECRET = module.views.master_secret_arn, PICKUP_VIEWS_APP_SECRET = module.views.app_secret_arn }
    error_message = "views-setup must be given the RDS-managed master secret and the app role's"
  }

  assert {
    condition     = alltrue(flatten([for t, p in module.fetchers.task_policies : [for st in p.Statement : !contains(st.Resource, module.views.master_secret_arn)]]))
    error_message = "no task role may read the master secret; only ECS injects it (into views-setup)"
  }

  assert {
    condition     = module.fetchers.fetcher_environment["PICKUP_VIEWS"] == "postgres://pickup_app@pickup-test-views.cluster-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require"
    error_message = "the tasks must reach the views on the cluster's writer, as the app role"
  }

  assert {
    condition     = one([for c in module.fetchers.container_definitions["projector"] : c if c.name == "views-setup"]).environment == [{ name = "PICKUP_LOG_LEVEL", value = "info" }, { name = "PICKUP_VIEWS", value = "postgres://pickup-test-views.cluster-abc.us-east-1.rds.amazonaws.com:5432/pickup?sslmode=require" }]
    error_message = "views-setup must reach the cluster's writer, never the proxy"
  }

  assert {
    condition     = module.views.direct_client_security_group_ids == [module.fetchers.task_security_group_id, module.serve.security_group_id] && module.views.proxy_client_security_group_ids == [module.gateway.security_group_id]
    error_message = "the cluster must admit the tasks (fetchers, projector, admin, serve) and the proxy the gateway, and no one else"
  }

  assert {
    condition     = jsondecode(aws_sns_topic_policy.alarms.policy).Statement[1].Principal.Service == ["cloudwatch.amazonaws.com", "events.amazonaws.com"] && aws_sns_topic_policy.alarms.arn == aws_sns_topic.alarms.arn
    error_message = "CloudWatch alarms and EventBridge (failed tasks) must be allowed to publish to the alarm topic"
  }

  assert {
    condition     = output.protection == { views_deletion_protection = true, views_final_snapshot = true, eventlog_protected = true, buckets_kept = true, images_kept = true, secrets_recoverable = true }
    error_message = "a deployment that is not disposable must keep its data through `terraform destroy`"
  }

  assert {
    condition     = module.fetchers.projector_environment["PICKUP_NOTIFY_TOPIC_ARN"] == output.pinned_topic_arn
    error_message = "the projector must notify this deployment's topic"
  }

  assert {
    condition     = length(output.nat_public_ips) == 2
    error_message = "a NAT gateway per zone unless single_nat_gateway"
  }

  # The serving role.
  assert {
    condition = (module.serve.environment["PICKUP_CARPARK_BUCKET"] == module.fetchers.fetcher_environment["PICKUP_CARPARK_BUCKET"] &&
      module.serve.environment["PICKUP_S3_REGION"] == module.fetchers.fetcher_environment["PICKUP_S3_REGION"] &&
    !contains(keys(module.serve.environment), "PICKUP_STAGING_BUCKET"))
    error_message = "the serve role must read the fetchers' carpark, by the same settings, and be told nothing of staging"
  }

  assert {
    condition = (module.serve.environment["PICKUP_VIEWS"] == module.fetchers.fetcher_environment["PICKUP_VIEWS"] &&
      module.serve.environment["PICKUP_VIEWS_SECRET_ARN"] == module.views.app_secret_arn &&
      module.serve.environment["PICKUP_EVENTLOG"] == module.eventlog[0].url &&
    module.serve.environment["PICKUP_EVENTLOG_SECRET_ARN"] == module.eventlog[0].app_secret_arn)
    error_message = "the serve role must reach the views on the cluster's writer and the event log on its writer, as their app roles, with the app roles' secrets"
  }

  assert {
    condition = (module.serve.environment["PICKUP_SERVE_ADDR"] == "0.0.0.0:8080" && module.serve.environment["PICKUP_SERVE_MAX_REQUESTS"] == "256" &&
    module.serve.environment["PICKUP_SERVE_TIMEOUT"] == "30s" && module.serve.environment["PICKUP_SERVE_MAX_DAG_BYTES"] == "1073741824")
    error_message = "the serve role must listen on 8080 with the default limits"
  }

  assert {
    condition = (!anytrue([for st in module.serve.task_policy.Statement : contains(st.Resource, module.views.master_secret_arn) || contains(st.Resource, module.eventlog[0].master_secret_arn)]) &&
      toset(flatten([for st in module.serve.task_policy.Statement : st.Resource])) == toset([module.views.app_secret_arn, module.eventlog[0].app_secret_arn, module.storage.carpark_bucket_arn, "${module.storage.carpark_bucket_arn}/*"]) &&
    toset(flatten([for st in module.serve.task_policy.Statement : st.Action])) == toset(["secretsmanager:GetSecretValue", "s3:GetObject", "s3:ListBucket"]))
    error_message = "the serve role may read the carpark and the app roles' secrets only: never staging, a master secret or a write"
  }

  assert {
    condition     = module.serve.start_after == tolist([module.fetchers.projector_service_name])
    error_message = "the serve service must start after the projector service, whose views-setup creates the block-location lookup's schema"
  }

  assert {
    condition     = output.serve_url == "http://${module.serve.dns_name}" && module.serve.service_name == "pickup-test-serve"
    error_message = "the gateway's URL (the serve load balancer's) must be an output"
  }

  assert {
    condition = (module.serve.secrets == { PICKUP_SERVE_LIBP2P_KEY = output.serve_libp2p_key_secret_arn } &&
      contains(flatten([for st in module.serve.execution_policy.Statement : st.Resource]), output.serve_libp2p_key_secret_arn) &&
      !contains(flatten([for st in module.serve.task_policy.Statement : st.Resource]), output.serve_libp2p_key_secret_arn) &&
    module.serve.secret_recovery_window_in_days == 30)
    error_message = "the serve peer's key must be injected from its own secret (an output, for the operator to write), readable by the execution role only, and recoverable once deleted"
  }

  assert {
    condition = (output.serve_libp2p_addrs == ["/dns4/${module.serve.libp2p_dns_name}/tcp/4002", "/dns4/${module.serve.libp2p_dns_name}/udp/4002/quic-v1"] &&
      module.serve.environment["PICKUP_SERVE_LIBP2P_ANNOUNCE"] == join(",", output.serve_libp2p_addrs) &&
      module.serve.environment["PICKUP_SERVE_PUBLIC_URL"] == output.serve_url &&
    !contains(keys(module.serve.environment), "PICKUP_IPNI_INDEXERS"))
    error_message = "the serve peer must announce its network load balancer's addresses (outputs) and the gateway's URL, and no indexer unless serve_ipni_indexers names some"
  }
}

run "ipni_indexers" {
  command = plan

  variables {
    serve_ipni_indexers = ["https://cid.contact"]
  }

  assert {
    condition     = module.serve.environment["PICKUP_IPNI_INDEXERS"] == "https://cid.contact"
    error_message = "serve_ipni_indexers must reach the serve role as PICKUP_IPNI_INDEXERS"
  }
}

run "single_nat_gateway" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(module.network.nat_public_ips) == 1
    error_message = "single_nat_gateway makes one NAT gateway for every zone"
  }
}

run "disposable" {
  command = plan

  variables {
    disposable = true
  }

  assert {
    condition     = output.protection == { views_deletion_protection = false, views_final_snapshot = false, eventlog_protected = false, buckets_kept = false, images_kept = false, secrets_recoverable = false }
    error_message = "a disposable deployment must go whole with `terraform destroy`, even once images are pushed and CARs written"
  }

  assert {
    condition     = module.serve.secret_recovery_window_in_days == 0
    error_message = "a disposable deployment's serve peer key secret must go at once"
  }
}

run "disposable_refused" {
  command = plan

  variables {
    allow_disposable = false
    disposable       = true
  }

  expect_failures = [var.disposable]
}

run "private_fetchers_need_delegates" {
  command = plan

  variables {
    fetchers_public = false
  }

  expect_failures = [var.delegates]
}

run "private_fetchers_with_delegates" {
  command = plan

  variables {
    fetchers_public = false
    delegates       = ["/dns4/fetchers.example/tcp/4001/p2p/12D3KooWA", "/dns4/fetchers.example/udp/4001/quic-v1/p2p/12D3KooWB"]
  }

  assert {
    condition     = module.gateway.environment["PICKUP_DELEGATES"] == "/dns4/fetchers.example/tcp/4001/p2p/12D3KooWA,/dns4/fetchers.example/udp/4001/quic-v1/p2p/12D3KooWB"
    error_message = "private fetchers' delegates must reach the gateway as PICKUP_DELEGATES"
  }

  assert {
    condition     = module.fetchers.fetcher_subnet_ids == toset(module.network.private_subnet_ids) && !contains(keys(module.fetchers.fetcher_environment), "PICKUP_LIBP2P_PUBLIC_IP")
    error_message = "private fetchers must stay in the private subnets"
  }
}

run "delegates_are_multiaddrs" {
  command = plan

  variables {
    delegates = ["fetchers.example:4001"]
  }

  expect_failures = [var.delegates]
}

run "eventstoredb" {
  command = apply

  variables {
    eventlog                           = "esdb"
    eventlog_connection_string         = "kurrentdb+discover://admin:changeit@cluster.example:2113"
    eventlog_connection_string_version = 1
  }

  assert {
    condition     = module.gateway.environment["PICKUP_EVENTLOG_SECRET_ARN"] == module.eventstore[0].secret_arn && !contains(keys(module.gateway.environment), "PICKUP_EVENTLOG")
    error_message = "with eventlog = \"esdb\" the gateway must read the connection string secret this deployment creates"
  }

  assert {
    condition = (module.fetchers.secrets["fetcher"]["PICKUP_EVENTLOG"] == module.eventstore[0].secret_arn &&
      module.fetchers.secrets["projector"]["PICKUP_EVENTLOG"] == module.eventstore[0].secret_arn &&
    module.fetchers.secrets["admin"]["PICKUP_EVENTLOG"] == module.eventstore[0].secret_arn)
    error_message = "with eventlog = \"esdb\" the tasks must get the event log from this deployment's secret"
  }

  assert {
    condition     = module.serve.secrets == { PICKUP_EVENTLOG = module.eventstore[0].secret_arn, PICKUP_SERVE_LIBP2P_KEY = output.serve_libp2p_key_secret_arn } && !contains(keys(module.serve.environment), "PICKUP_EVENTLOG")
    error_message = "with eventlog = \"esdb\" the serve tasks must get the event log from this deployment's secret"
  }

  assert {
    condition     = length(module.eventlog) == 0 && [for c in module.fetchers.container_definitions["projector"] : c.name] == ["views-setup", "projector"]
    error_message = "with eventlog = \"esdb\" there is no event log cluster and no events-setup"
  }
}

run "connection_string_needs_esdb" {
  command = plan

  variables {
    eventlog_connection_string_version = 1
  }

  expect_failures = [var.eventlog_connection_string_version]
}

run "eventlog_kind" {
  command = plan

  variables {
    eventlog = "sqlite"
  }

  expect_failures = [var.eventlog]
}
