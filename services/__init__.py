"""civic's four services; each imports shared/ and never another service."""
