output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone, in the order of var.azs: where the tasks, the Lambda and the database run."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, one per availability zone: the NAT gateways, and the fetchers when they are public (each task with its own public address)."
  value       = aws_subnet.public[*].id
}

output "public_route_table_id" {
  description = "ID of the public subnets' route table (default route to the internet gateway, S3 through the gateway endpoint)."
  value       = aws_route_table.public.id
}

output "private_route_table_ids" {
  description = "IDs of the private subnets' route tables."
  value       = aws_route_table.private[*].id
}

output "nat_public_ips" {
  description = "Public addresses the tasks reach the internet from: give them to IPFS origins that allow-list their peers."
  value       = aws_eip.nat[*].public_ip
}

output "s3_endpoint_id" {
  description = "ID of the S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.id
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint's addresses, for security groups' egress to S3."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}
