"""Redis ACL users: one per civic service, one for outside subscribers (docs/privacy.md).

A service's user reaches its own streams (public and private), its markers and dead-letter stream, keys under
``<prefix>:<service>:`` and the streams it consumes; nothing else. The subscribers' user reads only the public
streams (``<prefix>:stream:*``): private streams (``<prefix>:private:*``) are out of its reach, whatever it
asks. ``civic redis-acl`` prints these rules for an operator's ACL file; the tests create them on the fly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from shared.bus.streams import Keys
from shared.contracts.registry import REGISTRY, Registry

#: What every civic service needs (streams, its markers and counters), without the dangerous commands
#: (FLUSHALL, CONFIG, KEYS, ACL, DEBUG ...).
SERVICE_COMMANDS = "-@all +@read +@write +@stream +@connection +@transaction -@dangerous"

#: What an outside subscriber needs to read with consumer groups of its own, and nothing that writes events,
#: deletes them or destroys or moves a group.
SUBSCRIBER_COMMANDS = (
    "-@all +@connection +xread +xreadgroup +xack +xautoclaim +xclaim +xpending +xinfo +xrange +xrevrange +xlen "
    "+xgroup|create +xgroup|createconsumer +xgroup|delconsumer"
)


def service_key_patterns(
    service: str, keys: Keys, consumes: Iterable[str] = (), registry: Registry = REGISTRY
) -> list[str]:
    produced = {s.stream for s in registry if s.producer == service}
    consumed = {registry.get(t).stream for t in consumes}
    patterns = [keys.stream(s) for s in sorted(produced | consumed)]
    patterns += [keys.alive(service), keys.dead_letters(service), f"{keys.prefix}:{service}:*"]
    return patterns


def _password(password: str) -> str:
    """As Redis stores it: the SHA-256 of the password, so an ACL file holds no password in the clear."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def service_rule(service: str, password: str, keys: Keys, consumes: Iterable[str] = ()) -> str:
    """The body of ``ACL SETUSER`` / a ``user`` line of an ACL file for a service's Redis user."""
    patterns = " ".join(f"~{p}" for p in service_key_patterns(service, keys, consumes))
    return f"on {_password(password)} resetkeys resetchannels {patterns} {SERVICE_COMMANDS}"


def subscriber_rule(password: str, keys: Keys) -> str:
    return f"on {_password(password)} resetkeys resetchannels ~{keys.prefix}:stream:* {SUBSCRIBER_COMMANDS}"


def acl_file(
    passwords: Mapping[str, str],
    subscriber_password: str,
    keys: Keys,
    consumers: Mapping[str, Sequence[str]],
    *,
    user_prefix: str = "civic-",
    admin_password: str | None = None,
) -> str:
    """An ACL file (``aclfile``) with a user per service and ``<user_prefix>subscriber``. The default user is
    the operator's (everything, with ``admin_password``) or, without one, turned off."""
    admin = f"on {_password(admin_password)} ~* &* +@all" if admin_password else "off"
    lines = [f"user default {admin}"]
    for service, password in sorted(passwords.items()):
        lines.append(f"user {user_prefix}{service} {service_rule(service, password, keys, consumers.get(service, ()))}")
    lines.append(f"user {user_prefix}subscriber {subscriber_rule(subscriber_password, keys)}")
    return "\n".join(lines) + "\n"
