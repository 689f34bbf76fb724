"""Vault alert rules, evaluated live by the console exactly as the shipped Prometheus file."""
