"""Checks run between rollout steps: webhooks now, CloudWatch metrics next."""
