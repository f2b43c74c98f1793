"""civic's event bus: transactional outbox, relay to Redis Streams, idempotent consumers, dead letters,
recovery from Redis data loss, retention, and the deadline scheduler."""
