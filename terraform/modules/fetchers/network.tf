# Security groups: every task may go out (IPFS peers and gateways, the event
# store, the views, AWS APIs); only the fetchers' libp2p ports come in.

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "pickup fetchers, projector and admin tasks: out to IPFS, the event store, the views and AWS APIs."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-tasks" })
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  security_group_id = aws_security_group.tasks.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "IPFS peers and gateways, the event store, the views, S3 and other AWS APIs"
}

# The fetchers' libp2p host: bitswap peers (and the clients told of them as
# delegates) dial each fetcher at its own address. From anywhere: a peer is
# anyone on the IPFS network. In private subnets nothing outside the VPC
# reaches it (the operator's own load balancer or peering may).
resource "aws_security_group" "libp2p" {
  name        = "${var.name}-fetcher-libp2p"
  description = "pickup fetchers: libp2p (TCP and QUIC) on port ${local.libp2p_port} from anywhere."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-fetcher-libp2p" })
}

locals {
  libp2p_ingress = merge(
    {
      tcp_ipv4 = { protocol = "tcp", cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null }
      udp_ipv4 = { protocol = "udp", cidr_ipv4 = "0.0.0.0/0", cidr_ipv6 = null }
    },
    var.ipv6 ? {
      tcp_ipv6 = { protocol = "tcp", cidr_ipv4 = null, cidr_ipv6 = "::/0" }
      udp_ipv6 = { protocol = "udp", cidr_ipv4 = null, cidr_ipv6 = "::/0" }
    } : {},
  )
}

resource "aws_vpc_security_group_ingress_rule" "libp2p" {
  for_each = local.libp2p_ingress

  security_group_id = aws_security_group.libp2p.id
  ip_protocol       = each.value.protocol
  from_port         = local.libp2p_port
  to_port           = local.libp2p_port
  cidr_ipv4         = each.value.cidr_ipv4
  cidr_ipv6         = each.value.cidr_ipv6
  description       = "libp2p over ${each.value.protocol == "udp" ? "QUIC" : "TCP"} from IPFS peers"
}
