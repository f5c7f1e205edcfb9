# The whole deployment, planned and applied against a mocked AWS: checks that
# the modules are wired to each other as pickup's configuration expects.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                               = "pickup-test"
  az_count                           = 2
  vpc_cidr                           = "10.40.0.0/16"
  fetcher_max_count                  = 4
  image_tag                          = "v0.1.0"
  notify_on_pinned                   = true
  eventlog_connection_string         = "kurrentdb+discover://admin:changeit@cluster.example:2113"
  eventlog_connection_string_version = 1
}

run "wiring" {
  command = apply

  assert {
    condition     = module.gateway.environment["PICKUP_EVENTLOG_SECRET_ARN"] == module.eventstore.secret_arn
    error_message = "the gateway must read the event log secret this deployment creates"
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
    condition = (module.fetchers.secrets["fetcher"]["PICKUP_EVENTLOG"] == module.eventstore.secret_arn &&
      module.fetchers.secrets["projector"]["PICKUP_EVENTLOG"] == module.eventstore.secret_arn &&
    module.fetchers.secrets["admin"]["PICKUP_EVENTLOG"] == module.eventstore.secret_arn)
    error_message = "the tasks must get the event log from this deployment's secret"
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
    condition     = module.views.direct_client_security_group_ids == [module.fetchers.task_security_group_id] && module.views.proxy_client_security_group_ids == [module.gateway.security_group_id]
    error_message = "the cluster must admit the tasks (fetchers, projector, admin) and the proxy the gateway, and no one else"
  }

  assert {
    condition     = jsondecode(aws_sns_topic_policy.alarms.policy).Statement[1].Principal.Service == ["cloudwatch.amazonaws.com", "events.amazonaws.com"] && aws_sns_topic_policy.alarms.arn == aws_sns_topic.alarms.arn
    error_message = "CloudWatch alarms and EventBridge (failed tasks) must be allowed to publish to the alarm topic"
  }

  assert {
    condition     = output.protection == { views_deletion_protection = true, views_final_snapshot = true, buckets_kept = true, images_kept = true, secrets_recoverable = true }
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
    condition     = output.protection == { views_deletion_protection = false, views_final_snapshot = false, buckets_kept = false, images_kept = false, secrets_recoverable = false }
    error_message = "a disposable deployment must go whole with `terraform destroy`, even once images are pushed and CARs written"
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
