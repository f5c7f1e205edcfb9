# Where the fetchers run, and whether peers can dial them.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                   = "pickup-test"
  vpc_id                 = "vpc-1"
  subnet_ids             = ["subnet-a", "subnet-b"]
  image_tag              = "v1.2.3"
  eventlog_secret_arn    = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf"
  public_subnet_ids      = ["subnet-public-a", "subnet-public-b"]
  views_url              = "postgres://pickup_app@views.cluster.example:5432/pickup?sslmode=require"
  views_secret_arn       = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
  views_admin_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!cluster-abc"
  views_setup_url        = "postgres://views.cluster.example:5432/pickup?sslmode=require"
  staging_bucket         = "pickup-test-staging"
  staging_bucket_arn     = "arn:aws:s3:::pickup-test-staging"
  staging_prefix         = "staging/"
  carpark_bucket         = "pickup-test-carpark"
  carpark_bucket_arn     = "arn:aws:s3:::pickup-test-carpark"
}

run "public_fetchers_are_dialable" {
  command = apply

  assert {
    condition = (one(aws_ecs_service.fetcher.network_configuration).assign_public_ip &&
    one(aws_ecs_service.fetcher.network_configuration).subnets == toset(["subnet-public-a", "subnet-public-b"]))
    error_message = "public fetchers must run in the public subnets, each task with its own public address"
  }

  assert {
    condition     = one(aws_ecs_service.fetcher.network_configuration).security_groups == toset(["sg-tasks", "sg-libp2p"])
    error_message = "the fetchers must be in the libp2p security group"
  }

  assert {
    condition = alltrue([for proto in ["tcp", "udp"] : anytrue([for r in aws_vpc_security_group_ingress_rule.libp2p :
    r.security_group_id == "sg-libp2p" && r.ip_protocol == proto && r.from_port == 4001 && r.to_port == 4001 && r.cidr_ipv4 == "0.0.0.0/0"])])
    error_message = "the libp2p security group must admit TCP and UDP (QUIC) 4001 from anywhere: peers dial each fetcher at its own address"
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.libp2p) == 2
    error_message = "without IPv6 the libp2p port is open on IPv4 only"
  }

  assert {
    condition     = toset([for p in jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].portMappings : "${p.containerPort}/${p.protocol}"]) == toset(["9464/tcp", "4001/tcp", "4001/udp"])
    error_message = "the fetcher container must expose the admin port and libp2p over TCP and UDP"
  }

  assert {
    condition = contains(jsondecode(aws_iam_role_policy.task["fetcher"].policy).Statement, {
      Sid      = "FindOwnPublicIp"
      Effect   = "Allow"
      Action   = ["ec2:DescribeNetworkInterfaces"]
      Resource = ["*"]
    })
    error_message = "PICKUP_LIBP2P_PUBLIC_IP=ecs needs ec2:DescribeNetworkInterfaces"
  }

  assert {
    condition     = one(aws_ecs_service.projector.network_configuration).subnets == toset(["subnet-a", "subnet-b"]) && !one(aws_ecs_service.projector.network_configuration).assign_public_ip && one(aws_ecs_service.projector.network_configuration).security_groups == toset(["sg-tasks"])
    error_message = "the projector stays private, without the libp2p port"
  }
}

run "ipv6" {
  command = plan

  variables {
    ipv6 = true
  }

  assert {
    condition     = length([for r in aws_vpc_security_group_ingress_rule.libp2p : r if r.cidr_ipv6 == "::/0"]) == 2
    error_message = "with IPv6 the libp2p port must be open to ::/0 over TCP and UDP too"
  }
}

run "private_fetchers" {
  command = apply

  variables {
    fetchers_public = false
  }

  assert {
    condition     = !one(aws_ecs_service.fetcher.network_configuration).assign_public_ip && one(aws_ecs_service.fetcher.network_configuration).subnets == toset(["subnet-a", "subnet-b"])
    error_message = "private fetchers must run in the private subnets without public addresses"
  }

  assert {
    condition     = !contains(keys({ for e in jsondecode(aws_ecs_task_definition.this["fetcher"].container_definitions)[0].environment : e.name => e.value }), "PICKUP_LIBP2P_PUBLIC_IP")
    error_message = "private fetchers have no public address to discover"
  }

  assert {
    condition     = !contains([for s in jsondecode(aws_iam_role_policy.task["fetcher"].policy).Statement : s.Sid], "FindOwnPublicIp")
    error_message = "private fetchers need no EC2 permission"
  }
}

run "public_fetchers_need_public_subnets" {
  command = plan

  variables {
    public_subnet_ids = []
  }

  expect_failures = [var.public_subnet_ids]
}
