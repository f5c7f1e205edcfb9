mock_provider "aws" {
  override_data {
    target = data.aws_region.current
    values = {
      region = "eu-west-1"
    }
  }
}

variables {
  name = "pickup-test"
  azs  = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

run "one_nat_per_zone" {
  command = apply

  assert {
    condition     = length(aws_subnet.private) == 3 && length(aws_nat_gateway.this) == 3
    error_message = "each zone needs a private subnet and its own NAT gateway"
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : !s.map_public_ip_on_launch])
    error_message = "private subnets must not give public addresses"
  }

  assert {
    condition     = [for r in aws_route.private_nat : r.nat_gateway_id] == aws_nat_gateway.this[*].id
    error_message = "each private route table must route through its own zone's NAT gateway"
  }

  assert {
    condition     = alltrue([for r in aws_route.private_nat : r.destination_cidr_block == "0.0.0.0/0"])
    error_message = "private subnets need a default route to reach IPFS"
  }

  assert {
    condition     = length(distinct(concat(aws_subnet.private[*].cidr_block, aws_subnet.public[*].cidr_block))) == 6
    error_message = "subnets must not overlap"
  }
}

run "s3_gateway_endpoint" {
  command = apply

  assert {
    condition     = aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway" && aws_vpc_endpoint.s3.service_name == "com.amazonaws.eu-west-1.s3"
    error_message = "the S3 endpoint must be a gateway endpoint for the region's S3"
  }

  assert {
    condition     = toset(aws_vpc_endpoint.s3.route_table_ids) == toset(concat(aws_route_table.private[*].id, [aws_route_table.public.id]))
    error_message = "the S3 endpoint must serve every private route table and the public one (public fetchers upload through it)"
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "the default security group must have no rules"
  }
}

run "single_nat_gateway" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_route.private_nat) == 3
    error_message = "a single NAT gateway must serve all three private route tables"
  }
}

run "needs_two_zones" {
  command = plan

  variables {
    azs = ["eu-west-1a"]
  }

  expect_failures = [var.azs]
}
