# Security groups: the load balancer from the internet on 80 (and 443 with
# a certificate), out to the tasks only; the network load balancer from
# the internet on libp2p's 4002, TCP and UDP, out to the tasks' 4002 only;
# the tasks from the two load balancers only, each on its port, out to S3
# (the gateway endpoint's prefix list), the AWS APIs (Secrets Manager, ECR,
# CloudWatch Logs) and the IPNI indexers over HTTPS through the NAT
# gateways, and the databases' security groups.

resource "aws_security_group" "alb" {
  name        = "${var.name}-serve-alb"
  description = "pickup serve's load balancer: HTTP (and HTTPS) from the internet, out to the serve tasks."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-serve-alb" })
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = toset(local.https ? ["80", "443"] : ["80"])

  security_group_id = aws_security_group.alb.id
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)
  cidr_ipv4         = "0.0.0.0/0"
  description       = each.key == "443" ? "HTTPS from the internet" : "HTTP from the internet"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.serve_port
  to_port                      = local.serve_port
  description                  = "Requests and health checks to the serve tasks"
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-serve"
  description = "pickup serve tasks: HTTP from the ALB and libp2p from the NLB only; out to S3, AWS APIs, the indexers and the databases."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-serve" })
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.serve_port
  to_port                      = local.serve_port
  description                  = "Requests and health checks from the load balancer"
}

# libp2p (bitswap) through the network load balancer, which keeps the
# clients' addresses: the tasks admit 4002 from its security group, which
# admits the clients (AWS lets a target's rule that references the load
# balancer's group pass preserved client addresses); never from the world
# directly.
locals {
  libp2p_protocols = toset(["tcp", "udp"])
}

resource "aws_security_group" "nlb" {
  name        = "${var.name}-serve-nlb"
  description = "pickup serve's network load balancer: libp2p (TCP and QUIC on 4002) from the internet, out to the serve tasks."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-serve-nlb" })
}

resource "aws_vpc_security_group_ingress_rule" "nlb" {
  for_each = local.libp2p_protocols

  security_group_id = aws_security_group.nlb.id
  ip_protocol       = each.key
  from_port         = local.libp2p_port
  to_port           = local.libp2p_port
  cidr_ipv4         = "0.0.0.0/0"
  description       = "libp2p over ${each.key == "udp" ? "QUIC" : "TCP"} from IPFS peers"
}

# The health checks (TCP on 4002) are subject to these egress rules too.
resource "aws_vpc_security_group_egress_rule" "nlb_to_tasks" {
  for_each = local.libp2p_protocols

  security_group_id            = aws_security_group.nlb.id
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = each.key
  from_port                    = local.libp2p_port
  to_port                      = local.libp2p_port
  description                  = "libp2p over ${each.key == "udp" ? "QUIC" : "TCP"} (and TCP health checks) to the serve tasks"
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_nlb" {
  for_each = local.libp2p_protocols

  security_group_id            = aws_security_group.tasks.id
  referenced_security_group_id = aws_security_group.nlb.id
  ip_protocol                  = each.key
  from_port                    = local.libp2p_port
  to_port                      = local.libp2p_port
  description                  = "libp2p over ${each.key == "udp" ? "QUIC" : "TCP"} (and TCP health checks) from the network load balancer"
}

locals {
  # Where the tasks may connect to. A PostgreSQL event log and the views
  # by their clusters' security groups; an EventStoreDB log is the
  # operator's, at an address the deployment does not know.
  task_egress = merge(
    {
      s3       = { protocol = "tcp", port = 443, to_port = 443, prefix_list_id = var.s3_prefix_list_id, cidr_ipv4 = null, security_group_id = null, description = "S3 (the carpark) through the gateway endpoint" }
      aws_apis = { protocol = "tcp", port = 443, to_port = 443, prefix_list_id = null, cidr_ipv4 = "0.0.0.0/0", security_group_id = null, description = "Secrets Manager, ECR, CloudWatch Logs and the IPNI indexers through the NAT gateways" }
      views    = { protocol = "tcp", port = 5432, to_port = 5432, prefix_list_id = null, cidr_ipv4 = null, security_group_id = var.views_security_group_id, description = "The views' cluster (PostgreSQL)" }
    },
    local.postgres_log ? {
      eventlog = { protocol = "tcp", port = 5432, to_port = 5432, prefix_list_id = null, cidr_ipv4 = null, security_group_id = var.eventlog_security_group_id, description = "The event log's cluster (PostgreSQL)" }
      } : {
      eventlog = { protocol = "tcp", port = 1, to_port = 65535, prefix_list_id = null, cidr_ipv4 = "0.0.0.0/0", security_group_id = null, description = "The operator's EventStoreDB/KurrentDB cluster" }
    },
  )
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  for_each = local.task_egress

  security_group_id            = aws_security_group.tasks.id
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.to_port
  prefix_list_id               = each.value.prefix_list_id
  cidr_ipv4                    = each.value.cidr_ipv4
  referenced_security_group_id = each.value.security_group_id
  description                  = each.value.description
}
