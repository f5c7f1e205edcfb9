# The serving role: its task, load balancer, network, role, scaling and
# alarms, against a mocked AWS.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                       = "pickup-test"
  vpc_id                     = "vpc-1"
  subnet_ids                 = ["subnet-a", "subnet-b"]
  public_subnet_ids          = ["subnet-public-a", "subnet-public-b"]
  s3_prefix_list_id          = "pl-63a5400a"
  cluster_arn                = "arn:aws:ecs:eu-west-1:111122223333:cluster/pickup-test"
  cluster_name               = "pickup-test"
  image                      = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/pickup-test:v1.2.3"
  ecr_repository_arn         = "arn:aws:ecr:eu-west-1:111122223333:repository/pickup-test"
  start_after                = ["pickup-test-projector"]
  views_url                  = "postgres://pickup_app@views.cluster.example:5432/pickup?sslmode=require"
  views_secret_arn           = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
  views_security_group_id    = "sg-views"
  eventlog_url               = "postgres://pickup_log_app@eventlog.cluster.example:5432/pickup_events?sslmode=require"
  eventlog_secret_arn        = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-app-AbCdEf"
  eventlog_security_group_id = "sg-eventlog"
  carpark_bucket             = "pickup-test-carpark"
  carpark_bucket_arn         = "arn:aws:s3:::pickup-test-carpark"
  alarm_actions              = ["arn:aws:sns:eu-west-1:111122223333:pickup-test-alarms"]
}

run "serve_task" {
  command = apply

  assert {
    condition     = [for c in output.container_definitions : c.name] == ["serve"] && output.container_definitions[0].command == ["serve"] && output.container_definitions[0].image == var.image
    error_message = "the serve service must run `pickup serve` of the fetchers' image, alone in its task"
  }

  assert {
    condition = { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value } == {
      PICKUP_DEPLOYMENT            = "pickup-test"
      PICKUP_EMF                   = "true"
      PICKUP_LOG_LEVEL             = "info"
      PICKUP_VIEWS                 = "postgres://pickup_app@views.cluster.example:5432/pickup?sslmode=require"
      PICKUP_VIEWS_SECRET_ARN      = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"
      PICKUP_EVENTLOG              = "postgres://pickup_log_app@eventlog.cluster.example:5432/pickup_events?sslmode=require"
      PICKUP_EVENTLOG_SECRET_ARN   = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-app-AbCdEf"
      PICKUP_ADMIN_ADDR            = ":9464"
      PICKUP_CARPARK_BUCKET        = "pickup-test-carpark"
      PICKUP_S3_REGION             = "eu-west-1"
      PICKUP_SERVE_ADDR            = "0.0.0.0:8080"
      PICKUP_SERVE_MAX_REQUESTS    = "256"
      PICKUP_SERVE_TIMEOUT         = "30s"
      PICKUP_SERVE_MAX_DAG_BYTES   = "1073741824"
      PICKUP_SERVE_LIBP2P_LISTEN   = "/ip4/0.0.0.0/tcp/4002,/ip4/0.0.0.0/udp/4002/quic-v1"
      PICKUP_SERVE_LIBP2P_ANNOUNCE = "/dns4/pickup-test-p2p-0a1b2c3d4e5f6a7b.elb.eu-west-1.amazonaws.com/tcp/4002,/dns4/pickup-test-p2p-0a1b2c3d4e5f6a7b.elb.eu-west-1.amazonaws.com/udp/4002/quic-v1"
      PICKUP_SERVE_PUBLIC_URL      = "http://pickup-test-serve-1234567890.eu-west-1.elb.amazonaws.com"
    }
    error_message = "the serve container's environment must carry the carpark (never staging), the views and the event log as their app roles, its listen addresses (HTTP and libp2p), the addresses it announces and its limits"
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets == [{ name = "PICKUP_SERVE_LIBP2P_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/serve-libp2p-key-AbCdEf" }]
    error_message = "with the PostgreSQL event log only the peer key is injected (from its own secret): the process reads the app roles' secrets itself"
  }

  assert {
    condition     = try(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].healthCheck, null) == { command = ["CMD", "/ko-app/pickup", "health", "--live"], interval = 30, timeout = 5, retries = 3, startPeriod = 60 }
    error_message = "the serve container's health check must run `pickup health --live`, as the other tasks'"
  }

  assert {
    condition     = toset([for p in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings : "${p.containerPort}/${p.protocol}"]) == toset(["8080/tcp", "9464/tcp", "4002/tcp"])
    error_message = "the serve container must expose the serving port 8080, the admin port and libp2p's 4002 (its QUIC half, udp/4002, needs no mapping in awsvpc mode, and ECS refuses a load-balanced port mapped twice)"
  }

  assert {
    condition = (jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration.options["awslogs-group"] == "/ecs/pickup-test/serve" &&
    aws_cloudwatch_log_group.this.retention_in_days == 30)
    error_message = "the serve container must run on a read-only root and log to its own log group, with retention"
  }

  assert {
    condition     = aws_ecs_task_definition.this.cpu == "256" && aws_ecs_task_definition.this.memory == "512" && aws_ecs_task_definition.this.requires_compatibilities == toset(["FARGATE"])
    error_message = "a serve task is 0.25 vCPU and 0.5 GB on Fargate by default"
  }

  assert {
    condition = (aws_ecs_service.this.cluster == var.cluster_arn && aws_ecs_service.this.launch_type == "FARGATE" &&
    toset([for lb in aws_ecs_service.this.load_balancer : "${lb.target_group_arn} ${lb.container_name}:${lb.container_port}"]) == toset(["${aws_lb_target_group.this.arn} serve:8080", "${aws_lb_target_group.libp2p.arn} serve:4002"]))
    error_message = "the serve service must run in the deployment's cluster, registered with the ALB's target group on the serve container's port 8080 and with the NLB's on 4002, and nothing else"
  }

  assert {
    condition     = output.url == "http://pickup-test-serve-1234567890.eu-west-1.elb.amazonaws.com" && output.dns_name == aws_lb.this.dns_name
    error_message = "without a certificate the gateway's URL is http:// and the load balancer's DNS name"
  }
}

run "load_balancer" {
  command = apply

  assert {
    condition = (!aws_lb.this.internal && aws_lb.this.load_balancer_type == "application" &&
      aws_lb.this.subnets == toset(var.public_subnet_ids) && aws_lb.this.security_groups == toset(["sg-alb"]) &&
    aws_lb.this.drop_invalid_header_fields)
    error_message = "the load balancer must be an internet-facing ALB in the public subnets, in its own security group, dropping invalid headers"
  }

  assert {
    condition = (aws_lb_target_group.this.port == 8080 && aws_lb_target_group.this.protocol == "HTTP" && aws_lb_target_group.this.target_type == "ip" &&
      one(aws_lb_target_group.this.health_check).path == "/healthz" && one(aws_lb_target_group.this.health_check).matcher == "200" &&
    one(aws_lb_target_group.this.health_check).port == "traffic-port")
    error_message = "the target group must send to the tasks' port 8080 (ip targets) and check /healthz there for 200"
  }

  assert {
    condition = (aws_lb_listener.http.port == 80 && aws_lb_listener.http.protocol == "HTTP" &&
      one(aws_lb_listener.http.default_action).type == "forward" &&
    one(aws_lb_listener.http.default_action).target_group_arn == aws_lb_target_group.this.arn && length(aws_lb_listener.https) == 0)
    error_message = "without a certificate HTTP on 80 forwards to the tasks, and there is no HTTPS listener"
  }

  assert {
    condition     = alltrue([for l in concat([aws_lb_listener.http], aws_lb_listener.https) : one(l.default_action).type != "fixed-response"]) && one(aws_lb_listener.http.default_action).target_group_arn == aws_lb_target_group.this.arn
    error_message = "the load balancer must send every path to the tasks (/ipfs/, delegated routing's /routing/v1/, the IPNI advertisements' /ipni/v1/ad/): its listener forwards by default, with no rule choosing paths"
  }
}

run "libp2p" {
  command = apply

  assert {
    condition = (!aws_lb.libp2p.internal && aws_lb.libp2p.load_balancer_type == "network" &&
      aws_lb.libp2p.subnets == toset(var.public_subnet_ids) && aws_lb.libp2p.security_groups == toset(["sg-nlb"]) &&
    aws_lb.libp2p.enable_cross_zone_load_balancing)
    error_message = "libp2p must be reached through an internet-facing network load balancer in the public subnets, in its own security group, sending to the tasks of every zone"
  }

  assert {
    condition = (aws_lb_listener.libp2p.load_balancer_arn == aws_lb.libp2p.arn && aws_lb_listener.libp2p.port == 4002 && aws_lb_listener.libp2p.protocol == "TCP_UDP" &&
      one(aws_lb_listener.libp2p.default_action).type == "forward" &&
    one(aws_lb_listener.libp2p.default_action).target_group_arn == aws_lb_target_group.libp2p.arn)
    error_message = "the network load balancer must take libp2p's TCP and QUIC (UDP) on 4002 and forward both to the tasks"
  }

  assert {
    condition = (aws_lb_target_group.libp2p.port == 4002 && aws_lb_target_group.libp2p.protocol == "TCP_UDP" && aws_lb_target_group.libp2p.target_type == "ip" &&
    one(aws_lb_target_group.libp2p.health_check).protocol == "TCP" && one(aws_lb_target_group.libp2p.health_check).port == "traffic-port")
    error_message = "the libp2p target group must send TCP and UDP to the tasks' 4002 (ip targets) and check that a TCP connection to it is accepted"
  }

  assert {
    condition     = output.libp2p_dns_name == aws_lb.libp2p.dns_name && output.libp2p_addrs == ["/dns4/${aws_lb.libp2p.dns_name}/tcp/4002", "/dns4/${aws_lb.libp2p.dns_name}/udp/4002/quic-v1"] && output.environment["PICKUP_SERVE_LIBP2P_ANNOUNCE"] == join(",", output.libp2p_addrs)
    error_message = "the serve peer must announce TCP and QUIC on the network load balancer's name, which the outputs give"
  }

  assert {
    condition     = output.environment["PICKUP_SERVE_PUBLIC_URL"] == output.url && !contains(keys(output.environment), "PICKUP_IPNI_INDEXERS")
    error_message = "the serve role must announce the gateway's public URL, and no indexer unless ipni_indexers names some"
  }
}

run "libp2p_key" {
  command = apply

  assert {
    condition = (aws_secretsmanager_secret.libp2p_key.name == "pickup-test/serve-libp2p-key" && aws_secretsmanager_secret.libp2p_key.recovery_window_in_days == 30 &&
    output.libp2p_key_secret_arn == aws_secretsmanager_secret.libp2p_key.arn && output.libp2p_key_secret_name == "pickup-test/serve-libp2p-key")
    error_message = "the serve peer's key must have a secret of its own, recoverable once deleted, named by the outputs for the operator to write"
  }

  assert {
    condition     = output.secrets == { PICKUP_SERVE_LIBP2P_KEY = aws_secretsmanager_secret.libp2p_key.arn }
    error_message = "the peer key must reach the serve container as PICKUP_SERVE_LIBP2P_KEY, injected by ECS from its secret"
  }

  assert {
    condition = (contains(flatten([for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Resource if contains(s.Action, "secretsmanager:GetSecretValue")]), aws_secretsmanager_secret.libp2p_key.arn) &&
    !contains(flatten([for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s.Resource]), aws_secretsmanager_secret.libp2p_key.arn))
    error_message = "the execution role must read the peer key's secret (ECS injects it), and the task role must not"
  }
}

run "ipni_indexers" {
  command = plan

  variables {
    ipni_indexers = ["https://cid.contact", "https://indexer.example.org/ipni"]
  }

  assert {
    condition     = output.environment["PICKUP_IPNI_INDEXERS"] == "https://cid.contact,https://indexer.example.org/ipni"
    error_message = "the indexers must reach the serve container as PICKUP_IPNI_INDEXERS, comma-separated"
  }
}

run "plain_http_indexer_refused" {
  command = plan

  variables {
    ipni_indexers = ["http://indexer.example.org"]
  }

  expect_failures = [var.ipni_indexers]
}

run "disposable_key" {
  command = plan

  variables {
    secret_recovery_window_in_days = 0
  }

  assert {
    condition     = aws_secretsmanager_secret.libp2p_key.recovery_window_in_days == 0
    error_message = "a disposable deployment's peer key secret must go at once"
  }
}

run "network" {
  command = apply

  assert {
    condition     = one(aws_ecs_service.this.network_configuration).subnets == toset(var.subnet_ids) && !one(aws_ecs_service.this.network_configuration).assign_public_ip && one(aws_ecs_service.this.network_configuration).security_groups == toset(["sg-serve"])
    error_message = "the serve tasks must run in the private subnets, without public addresses, in their own security group"
  }

  assert {
    condition     = [for r in aws_vpc_security_group_ingress_rule.alb : "${r.ip_protocol}/${r.from_port}-${r.to_port} ${r.cidr_ipv4}"] == ["tcp/80-80 0.0.0.0/0"] && alltrue([for r in aws_vpc_security_group_ingress_rule.alb : r.security_group_id == "sg-alb"])
    error_message = "the load balancer must admit HTTP on 80 from the internet (and 443 only with a certificate)"
  }

  assert {
    condition = (aws_vpc_security_group_ingress_rule.tasks_from_alb.security_group_id == "sg-serve" &&
      aws_vpc_security_group_ingress_rule.tasks_from_alb.referenced_security_group_id == "sg-alb" &&
      aws_vpc_security_group_ingress_rule.tasks_from_alb.cidr_ipv4 == null && aws_vpc_security_group_ingress_rule.tasks_from_alb.cidr_ipv6 == null &&
    aws_vpc_security_group_ingress_rule.tasks_from_alb.from_port == 8080 && aws_vpc_security_group_ingress_rule.tasks_from_alb.to_port == 8080)
    error_message = "the serve tasks must admit 8080 from the load balancer's security group only, never from the world"
  }

  assert {
    condition     = aws_vpc_security_group_egress_rule.alb_to_tasks.referenced_security_group_id == "sg-serve" && aws_vpc_security_group_egress_rule.alb_to_tasks.from_port == 8080 && aws_vpc_security_group_egress_rule.alb_to_tasks.to_port == 8080
    error_message = "the load balancer may reach the serve tasks on 8080 only"
  }

  assert {
    condition     = toset([for r in aws_vpc_security_group_ingress_rule.nlb : "${r.security_group_id} ${r.ip_protocol}/${r.from_port}-${r.to_port} ${r.cidr_ipv4}"]) == toset(["sg-nlb tcp/4002-4002 0.0.0.0/0", "sg-nlb udp/4002-4002 0.0.0.0/0"])
    error_message = "the network load balancer must admit libp2p, TCP and UDP (QUIC) on 4002, from anywhere, and nothing else"
  }

  assert {
    condition     = toset([for r in aws_vpc_security_group_egress_rule.nlb_to_tasks : "${r.security_group_id} ${r.ip_protocol}/${r.from_port}-${r.to_port} ${coalesce(r.referenced_security_group_id, "-")} ${coalesce(r.cidr_ipv4, "-")}"]) == toset(["sg-nlb tcp/4002-4002 sg-serve -", "sg-nlb udp/4002-4002 sg-serve -"])
    error_message = "the network load balancer may reach the serve tasks on 4002, TCP (its health checks too) and UDP, only"
  }

  assert {
    condition = toset([for r in concat([aws_vpc_security_group_ingress_rule.tasks_from_alb], values(aws_vpc_security_group_ingress_rule.tasks_from_nlb)) :
      "${r.security_group_id} ${r.ip_protocol}/${r.from_port}-${r.to_port} ${coalesce(r.referenced_security_group_id, "-")} ${coalesce(r.cidr_ipv4, r.cidr_ipv6, "-")}"]) == toset([
      "sg-serve tcp/8080-8080 sg-alb -", "sg-serve tcp/4002-4002 sg-nlb -", "sg-serve udp/4002-4002 sg-nlb -",
    ])
    error_message = "the serve tasks must admit 8080 from the ALB's security group and libp2p's 4002 (TCP and UDP) from the NLB's, never from the world directly"
  }

  assert {
    condition = (aws_vpc_security_group_egress_rule.tasks["s3"].prefix_list_id == "pl-63a5400a" &&
      aws_vpc_security_group_egress_rule.tasks["views"].referenced_security_group_id == "sg-views" && aws_vpc_security_group_egress_rule.tasks["views"].from_port == 5432 &&
    aws_vpc_security_group_egress_rule.tasks["eventlog"].referenced_security_group_id == "sg-eventlog" && aws_vpc_security_group_egress_rule.tasks["eventlog"].from_port == 5432)
    error_message = "the serve tasks must reach S3 through the gateway endpoint and the views' and the event log's clusters by their security groups"
  }

  assert {
    condition     = alltrue([for k, r in aws_vpc_security_group_egress_rule.tasks : r.security_group_id == "sg-serve" && r.ip_protocol == "tcp" && (r.cidr_ipv4 == null || r.from_port == 443)])
    error_message = "the serve tasks may reach the internet on HTTPS only (AWS APIs through the NAT gateways)"
  }
}

run "least_privilege" {
  command = apply

  assert {
    condition = jsondecode(aws_iam_role_policy.task.policy).Statement == [
      {
        Sid      = "ReadViewsSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/views-app-AbCdEf"]
      },
      {
        Sid      = "ReadEventLogSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-app-AbCdEf"]
      },
      {
        Sid      = "ReadCars"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["arn:aws:s3:::pickup-test-carpark/*"]
      },
      {
        Sid      = "ListCarpark"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = ["arn:aws:s3:::pickup-test-carpark"]
      },
    ]
    error_message = "the serve role must read the carpark and the two app roles' secrets, and nothing else: no write, no staging"
  }

  assert {
    condition = !anytrue(flatten([for s in jsondecode(aws_iam_role_policy.task.policy).Statement : [for a in s.Action :
    contains(["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:PutObjectTagging"], a) || strcontains(a, "*")]]))
    error_message = "the serve role is read-only: no S3 write, no wildcard action"
  }

  assert {
    condition = (jsondecode(aws_iam_role_policy.execution.policy).Statement[2].Resource == ["arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/pickup-test/serve:*"] && jsondecode(aws_iam_role_policy.execution.policy).Statement[1].Resource == [var.ecr_repository_arn] &&
      length(jsondecode(aws_iam_role_policy.execution.policy).Statement) == 4 &&
      jsondecode(aws_iam_role_policy.execution.policy).Statement[3].Action == ["secretsmanager:GetSecretValue"] &&
    jsondecode(aws_iam_role_policy.execution.policy).Statement[3].Resource == ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/serve-libp2p-key-AbCdEf"])
    error_message = "ECS may pull the image, write the serve log group and, with the PostgreSQL log, read the peer key's secret and no other"
  }

  assert {
    condition     = aws_ecs_task_definition.this.task_role_arn == aws_iam_role.task.arn && aws_ecs_task_definition.this.execution_role_arn == aws_iam_role.execution.arn && aws_iam_role_policy.task.role == aws_iam_role.task.id
    error_message = "the serve task must run with its own task and execution roles"
  }
}

run "scaling_and_alarms" {
  command = apply

  assert {
    condition = (aws_appautoscaling_target.this.min_capacity == 2 && aws_appautoscaling_target.this.max_capacity == 10 &&
    aws_appautoscaling_target.this.resource_id == "service/pickup-test/pickup-test-serve" && aws_ecs_service.this.desired_count == 2)
    error_message = "autoscaling must own the serve service's count, between min_count and max_count"
  }

  assert {
    condition = (one(one(aws_appautoscaling_policy.requests.target_tracking_scaling_policy_configuration).predefined_metric_specification).predefined_metric_type == "ALBRequestCountPerTarget" &&
      one(one(aws_appautoscaling_policy.requests.target_tracking_scaling_policy_configuration).predefined_metric_specification).resource_label == "app/pickup-test-serve/50dc6c495c0c9188/targetgroup/pickup-test-serve/943f017f100becff" &&
    one(aws_appautoscaling_policy.requests.target_tracking_scaling_policy_configuration).target_value == 1000)
    error_message = "the serve service must track requests per target of its own load balancer and target group"
  }

  assert {
    condition     = one(one(aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration).predefined_metric_specification).predefined_metric_type == "ECSServiceAverageCPUUtilization" && one(aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration).target_value == 60
    error_message = "the serve service must track its average CPU too"
  }

  assert {
    condition = (aws_cloudwatch_metric_alarm.this["target-5xx"].metric_name == "HTTPCode_Target_5XX_Count" &&
      aws_cloudwatch_metric_alarm.this["lb-5xx"].metric_name == "HTTPCode_ELB_5XX_Count" &&
      aws_cloudwatch_metric_alarm.this["unhealthy-hosts"].metric_name == "UnHealthyHostCount" &&
      aws_cloudwatch_metric_alarm.this["unhealthy-hosts"].dimensions == tomap({ LoadBalancer = "app/pickup-test-serve/50dc6c495c0c9188", TargetGroup = "targetgroup/pickup-test-serve/943f017f100becff" }) &&
    alltrue([for a in aws_cloudwatch_metric_alarm.this : a.namespace == "AWS/ApplicationELB" && a.dimensions.LoadBalancer == "app/pickup-test-serve/50dc6c495c0c9188" && a.alarm_actions == toset(var.alarm_actions)]))
    error_message = "5xx answers (the tasks' and the load balancer's) and unhealthy targets must raise alarms to the alarm topic"
  }

  assert {
    condition     = tolist(aws_ecs_service.this.deployment_circuit_breaker)[0].enable && tolist(aws_ecs_service.this.deployment_circuit_breaker)[0].rollback
    error_message = "a serve version that cannot start must be rolled back"
  }
}

run "https" {
  command = apply

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:111122223333:certificate/abc"
    domain_name     = "ipfs.example.org"
  }

  assert {
    condition = (one(aws_lb_listener.http.default_action).type == "redirect" &&
      one(one(aws_lb_listener.http.default_action).redirect).protocol == "HTTPS" &&
    one(one(aws_lb_listener.http.default_action).redirect).port == "443")
    error_message = "with a certificate HTTP must redirect to HTTPS"
  }

  assert {
    condition = (aws_lb_listener.https[0].port == 443 && aws_lb_listener.https[0].protocol == "HTTPS" &&
      aws_lb_listener.https[0].certificate_arn == var.certificate_arn &&
    one(aws_lb_listener.https[0].default_action).target_group_arn == aws_lb_target_group.this.arn)
    error_message = "with a certificate HTTPS on 443 must forward to the tasks"
  }

  assert {
    condition     = toset([for r in aws_vpc_security_group_ingress_rule.alb : r.from_port]) == toset([80, 443]) && output.url == "https://ipfs.example.org" && output.environment["PICKUP_SERVE_PUBLIC_URL"] == "https://ipfs.example.org"
    error_message = "with a certificate the load balancer admits 443 too, and the URL (the one the serve role announces) is https:// on the domain"
  }
}

run "eventstoredb" {
  command = apply

  variables {
    eventlog_url               = null
    eventlog_security_group_id = null
    eventlog_secret_arn        = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/eventlog-AbCdEf"
  }

  assert {
    condition = (jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets == [{ name = "PICKUP_EVENTLOG", valueFrom = var.eventlog_secret_arn }, { name = "PICKUP_SERVE_LIBP2P_KEY", valueFrom = aws_secretsmanager_secret.libp2p_key.arn }] &&
      !contains(keys(output.environment), "PICKUP_EVENTLOG_SECRET_ARN") &&
    jsondecode(aws_iam_role_policy.execution.policy).Statement[3].Resource == [var.eventlog_secret_arn, aws_secretsmanager_secret.libp2p_key.arn])
    error_message = "with EventStoreDB the connection string must be injected by ECS beside the peer key, and only they"
  }

  assert {
    condition     = !contains(flatten([for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s.Resource]), var.eventlog_secret_arn)
    error_message = "with EventStoreDB the task role reads no event log secret (ECS injects it)"
  }
}

run "counts_refused" {
  command = plan

  variables {
    min_count = 4
    max_count = 2
  }

  expect_failures = [var.max_count]
}

run "no_tasks_refused" {
  command = plan

  variables {
    min_count = 0
  }

  expect_failures = [var.min_count]
}
