"""Adapters per real system: NATS monitoring, Vault/OpenBao API, AWS. No UI, no scenario logic."""
