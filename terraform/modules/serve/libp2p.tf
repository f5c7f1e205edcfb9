# The serve role's libp2p endpoint: bitswap from the carpark, the peer the
# IPNI advertisements and delegated routing name, on port 4002 over TCP and
# QUIC, behind an internet-facing Network Load Balancer.
#
# A load balancer works here where it cannot for the fetchers (README:
# "Dialable fetchers"): every serve task holds the same peer key, one
# secret per deployment, so a peer dialing /dns4/<nlb>/tcp/4002/p2p/<id>
# reaches the peer it named whichever task the load balancer picks.
#
# The key: a libp2p private key (base64 of the protobuf-marshalled key, as
# kubo's Identity.PrivKey), which no function or data source of the AWS
# provider can make (an ed25519 public key is not computable in Terraform,
# and aws_secretsmanager_random_password draws printable characters). So
# the secret is created empty and the operator writes it once
# (terraform/README.md, Deploying); Terraform never writes nor reads its
# value, so it is never regenerated behind anyone's back. Until it holds a
# value no serve task starts: ECS cannot inject it.

locals {
  libp2p_port = 4002

  libp2p_listen = ["/ip4/0.0.0.0/tcp/${local.libp2p_port}", "/ip4/0.0.0.0/udp/${local.libp2p_port}/quic-v1"]
  # What the advertisements and the routing answers carry: the load
  # balancer's name, which resolves to its addresses in every zone.
  libp2p_announce = ["/dns4/${aws_lb.libp2p.dns_name}/tcp/${local.libp2p_port}", "/dns4/${aws_lb.libp2p.dns_name}/udp/${local.libp2p_port}/quic-v1"]
}

resource "aws_secretsmanager_secret" "libp2p_key" {
  name                    = "${var.name}/serve-libp2p-key"
  description             = "libp2p private key of pickup deployment ${var.name}'s serve peer (PICKUP_SERVE_LIBP2P_KEY): base64 of the protobuf-marshalled key, written once by the operator."
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_lb" "libp2p" {
  # <name>-serve would be the ALB's; <name>-p2p fits AWS's 32 characters
  # for every name var.name allows.
  name               = "${var.name}-p2p"
  internal           = false
  load_balancer_type = "network"
  subnets            = var.public_subnet_ids
  # A Network Load Balancer takes security groups only when it is created.
  security_groups = [aws_security_group.nlb.id]
  # Each node sends to the tasks of every zone: two tasks cover three
  # zones (cross-zone traffic costs $0.01/GB each way).
  enable_cross_zone_load_balancing = true

  tags = var.tags
}

# One target group for both protocols: a TCP_UDP listener's must be
# TCP_UDP. It keeps the clients' addresses (always, for UDP), which the
# tasks' security group admits by referencing the load balancer's.
resource "aws_lb_target_group" "libp2p" {
  name        = "${var.name}-p2p"
  port        = local.libp2p_port
  protocol    = "TCP_UDP"
  vpc_id      = var.vpc_id
  target_type = "ip"
  # Peers of a stopping task reconnect through the load balancer to
  # another (they dial the same peer id); no need to wait long.
  deregistration_delay   = 30
  connection_termination = true

  # UDP cannot be checked: a TCP connection to the libp2p port is
  # accepted once the host listens.
  health_check {
    protocol            = "TCP"
    port                = "traffic-port"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "libp2p" {
  load_balancer_arn = aws_lb.libp2p.arn
  port              = local.libp2p_port
  protocol          = "TCP_UDP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.libp2p.arn
  }

  tags = var.tags
}
