"""Personal data in registration's events: sealed under the registration's key from the keyring.

Only the notifications service can open it (it may read the keyring); erasure and retention delete the key.
The key itself is read and stored by ``Store.registrant_key``.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from shared.contracts.envelope import Payload
from shared.contracts.registration import Contact, RegistrantData, registrant_context
from shared.privacy import seal

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
