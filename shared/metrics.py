"""Prometheus metrics of the bus, labelled by service and stream."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter("civic_events_published_total", "Events the relay published", ["service", "stream"])
EVENTS_CONSUMED = Counter("civic_events_consumed_total", "Events handled with effect", ["service", "stream"])
EVENTS_DUPLICATE = Counter("civic_events_duplicate_total", "Redeliveries absorbed", ["service", "stream"])
EVENTS_FAILED = Counter("civic_events_failed_total", "Handler failures (left pending)", ["service", "stream"])
EVENTS_DEAD_LETTERED = Counter("civic_events_dead_lettered_total", "Entries dead-lettered", ["service", "stream"])
OUTBOX_LAG = Gauge("civic_outbox_lag", "Outbox rows not yet published", ["service"])
CONSUMER_LAG = Gauge("civic_consumer_lag", "Entries not yet delivered to the group", ["service", "stream"])
CONSUMER_PENDING = Gauge("civic_consumer_pending", "Entries delivered but not acknowledged", ["service", "stream"])
OUTSIDE_GROUP_OVERRUN = Gauge(
    "civic_outside_group_overrun", "1 while a registered outside group is past its limits", ["group", "stream"]
)
HANDLER_SECONDS = Histogram("civic_handler_seconds", "Handler latency", ["service", "type"])
REDIS_DATA_LOSS = Counter("civic_redis_data_loss_total", "Times Redis was found to have lost its data", ["service"])
RELAY_REPLICATION_TIMEOUTS = Counter(
    "civic_relay_replication_timeouts_total",
    "Batches fewer replicas confirmed (WAIT) than CIVIC_REDIS_WAIT_REPLICAS within the timeout",
    ["service"],
)
REDIS_ENTRIES_LOST = Counter(
    "civic_redis_entries_lost_total",
    "Published entries a Redis primary no longer had (a failover lost them); published again",
    ["service", "stream"],
)
RELAY_BATCH_SECONDS = Histogram("civic_relay_batch_seconds", "Time to publish one outbox batch", ["service"])
