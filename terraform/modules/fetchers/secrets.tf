# Keys generated for the deployment by Secrets Manager (the AWS provider is
# the only one this deployment needs) and injected by ECS `secrets`: the
# fetchers' libp2p seed (each fetcher derives its peer key from it and its
# slot, so a fetcher keeps its peer id across restarts) and the key the
# projector signs webhooks with.
#
# Each value is written once, as a write-only attribute: never in the plan
# nor in the secret version's state. The data source's last reading is in the
# state, but it is read again at every plan, so after the first apply the
# state no longer holds the value written. Raise the version to write a new
# one (a new seed gives every fetcher a new peer id; a new webhook key must
# be given to the tenants' receivers).

locals {
  generated_secrets = {
    libp2p-seed = {
      description = "Seed of the libp2p keys of pickup deployment ${var.name}'s fetchers (PICKUP_LIBP2P_SEED)."
      version     = var.libp2p_seed_version
    }
    webhook-key = {
      description = "Key pickup deployment ${var.name}'s projector signs webhooks with (PICKUP_WEBHOOK_KEY)."
      version     = var.webhook_key_version
    }
  }
}

# 64 letters and digits: at least the 32 bytes both settings need.
data "aws_secretsmanager_random_password" "this" {
  for_each = local.generated_secrets

  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "libp2p_seed" {
  name                    = "${var.name}/libp2p-seed"
  description             = local.generated_secrets["libp2p-seed"].description
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "libp2p_seed" {
  secret_id                = aws_secretsmanager_secret.libp2p_seed.id
  secret_string_wo         = data.aws_secretsmanager_random_password.this["libp2p-seed"].random_password
  secret_string_wo_version = var.libp2p_seed_version
}

resource "aws_secretsmanager_secret" "webhook_key" {
  name                    = "${var.name}/webhook-key"
  description             = local.generated_secrets["webhook-key"].description
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "webhook_key" {
  secret_id                = aws_secretsmanager_secret.webhook_key.id
  secret_string_wo         = data.aws_secretsmanager_random_password.this["webhook-key"].random_password
  secret_string_wo_version = var.webhook_key_version
}
