"""Personal data in registration's events: sealed under the registration's key from the keyring.

Only the notifications service can open it (it may read the keyring); erasure and retention delete the key.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from shared.contracts.envelope import Payload
from shared.contracts.registration import Contact, RegistrantData, registrant_context
from shared.db import Conn
from shared.privacy import new_key, own_key, seal, store_keys

P = TypeVar("P", bound=Payload)


def sealed(
    cls: type[P],
    key: bytes,
    *,
    registration_id: UUID,
    contact: Contact,
    ticket_code: str | None = None,
    manage_url: str | None = None,
    **fields: Any,
) -> P:
    data = RegistrantData(contact=contact, ticket_code=ticket_code, manage_url=manage_url)
    return cls(
        registration_id=registration_id,
        key_id=registration_id,
        sealed=seal(key, data.model_dump(mode="json"), context=registrant_context(registration_id)),
        **fields,
    )


async def registrant_key(conn: Conn, registration_id: UUID, tenant: str) -> bytes:
    """The registration's key; a new one for a registration that has none (stored before keys, or erased)."""
    key = await own_key(conn, registration_id)
    if key is None:
        key = new_key()
        await store_keys(conn, [(registration_id, tenant, key)])
    return key
