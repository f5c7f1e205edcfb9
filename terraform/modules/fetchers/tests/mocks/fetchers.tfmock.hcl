# The mocked AWS of the fetchers module's tests: account 111122223333 in
# eu-west-1, with distinct ARNs and ids where the tests compare them.

override_data {
  target = data.aws_region.current
  values = { region = "eu-west-1" }
}

override_data {
  target = data.aws_partition.current
  values = { partition = "aws" }
}

override_data {
  target = data.aws_caller_identity.current
  values = { account_id = "111122223333" }
}

mock_resource "aws_ecr_repository" {
  defaults = {
    arn            = "arn:aws:ecr:eu-west-1:111122223333:repository/pickup-test"
    repository_url = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/pickup-test"
  }
}

mock_resource "aws_ecs_cluster" {
  defaults = {
    arn = "arn:aws:ecs:eu-west-1:111122223333:cluster/pickup-test"
  }
}

override_resource {
  target = aws_secretsmanager_secret.libp2p_seed
  values = { arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/libp2p-seed-AbCdEf" }
}

override_resource {
  target = aws_secretsmanager_secret.webhook_key
  values = { arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/webhook-key-AbCdEf" }
}

override_resource {
  target = aws_security_group.tasks
  values = { id = "sg-tasks" }
}

override_resource {
  target = aws_security_group.libp2p
  values = { id = "sg-libp2p" }
}
