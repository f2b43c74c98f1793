"""Fixtures of the deployment tests."""

from tests.deploy.gateway import gateway

__all__ = ["gateway"]
