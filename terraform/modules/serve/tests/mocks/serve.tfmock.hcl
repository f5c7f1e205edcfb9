# The mocked AWS of the serve module's tests: account 111122223333 in
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

mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/app/pickup-test-serve/50dc6c495c0c9188"
    arn_suffix = "app/pickup-test-serve/50dc6c495c0c9188"
    dns_name   = "pickup-test-serve-1234567890.eu-west-1.elb.amazonaws.com"
  }
}

mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/pickup-test-serve/943f017f100becff"
    arn_suffix = "targetgroup/pickup-test-serve/943f017f100becff"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/pickup-test/serve"
  }
}

override_resource {
  target = aws_security_group.alb
  values = { id = "sg-alb" }
}

override_resource {
  target = aws_security_group.tasks
  values = { id = "sg-serve" }
}

# The network load balancer in front of libp2p: names of its own, beside
# the ALB's (mock_resource "aws_lb" above).
override_resource {
  target = aws_lb.libp2p
  values = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/net/pickup-test-p2p/0a1b2c3d4e5f6a7b"
    arn_suffix = "net/pickup-test-p2p/0a1b2c3d4e5f6a7b"
    dns_name   = "pickup-test-p2p-0a1b2c3d4e5f6a7b.elb.eu-west-1.amazonaws.com"
  }
}

override_resource {
  target = aws_lb_target_group.libp2p
  values = {
    arn        = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/pickup-test-p2p/7b6a5f4e3d2c1b0a"
    arn_suffix = "targetgroup/pickup-test-p2p/7b6a5f4e3d2c1b0a"
  }
}

override_resource {
  target = aws_security_group.nlb
  values = { id = "sg-nlb" }
}

override_resource {
  target = aws_secretsmanager_secret.libp2p_key
  values = { arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pickup-test/serve-libp2p-key-AbCdEf" }
}
