# The dev environment against a mocked AWS: its sizing. The wiring is
# modules/pickup's, tested there.
mock_provider "aws" {
  source = "../../modules/pickup/tests/mocks"
}

variables {
  name                               = "pickup-test"
  image_tag                          = "v0.1.0"
  eventlog_connection_string         = "kurrentdb+discover://admin:changeit@cluster.example:2113"
  eventlog_connection_string_version = 1
}

run "sizing" {
  command = apply

  assert {
    condition     = length(output.nat_public_ips) == 1
    error_message = "dev runs one NAT gateway"
  }
}
