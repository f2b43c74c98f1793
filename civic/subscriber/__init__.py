"""civic's subscriber kit for FastStream (``pip install civic[subscriber]``); see docs/subscribing.md."""

from civic.subscriber.cloudevent import CloudEvent
from civic.subscriber.kit import CivicSubscriber

__all__ = ["CivicSubscriber", "CloudEvent"]
