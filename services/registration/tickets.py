"""Signed ticket codes, verifiable at the door without a database lookup (pretix's signed secrets).

A ticket is ``version | registration id (16 bytes) | meeting id prefix (4 bytes) | local day (days since
1970-01-01, 2 bytes)`` followed by an Ed25519 signature over those 23 bytes with the meeting's private key,
encoded in base32 without padding: upper-case letters and digits fit a QR code's alphanumeric mode.
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
from dataclasses import dataclass
from datetime import date
from typing import Literal
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

VERSION = 1
_LAYOUT = struct.Struct(">B16s4sH")
_EPOCH = date(1970, 1, 1)
SIGNATURE_BYTES = 64


def new_key_pair() -> tuple[bytes, bytes]:
    """Raw private and public key bytes of a fresh Ed25519 pair."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, public


def meeting_prefix(meeting_id: UUID) -> bytes:
    return meeting_id.bytes[:4]


@dataclass(frozen=True)
class TicketData:
    registration_id: UUID
    meeting_prefix: bytes
    day: date


@functools.lru_cache(maxsize=1024)
def _signer(private_key: bytes) -> Ed25519PrivateKey:
    # Loading a key costs about as much as a signature; a rush signs thousands with one meeting's key.
    return Ed25519PrivateKey.from_private_bytes(private_key)


def sign(private_key: bytes, registration_id: UUID, meeting_id: UUID, day: date) -> str:
    body = _LAYOUT.pack(VERSION, registration_id.bytes, meeting_prefix(meeting_id), (day - _EPOCH).days)
    signature = _signer(private_key).sign(body)
    return base64.b32encode(body + signature).decode().rstrip("=")


class BadTicket(ValueError):
    """The code is not a ticket signed by the key it was checked with."""


def decode(code: str) -> tuple[TicketData, bytes, bytes]:
    """The claimed content, the signed bytes and the signature; nothing is verified yet."""
    text = code.strip().upper().replace(" ", "")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise BadTicket("not a ticket code") from None
    if len(raw) != _LAYOUT.size + SIGNATURE_BYTES:
        raise BadTicket("not a ticket code")
    body, signature = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    version, rid, prefix, days = _LAYOUT.unpack(body)
    if version != VERSION:
        raise BadTicket("unknown ticket version")
    return TicketData(UUID(bytes=rid), prefix, date.fromordinal(_EPOCH.toordinal() + days)), body, signature


def verify(code: str, public_key: bytes) -> TicketData:
    data, body, signature = decode(code)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, body)
    except InvalidSignature:
        raise BadTicket("invalid signature") from None
    return data


Reason = Literal["invalid_signature", "wrong_meeting", "invalid_time"]


def check_offline(
    code: str,
    public_key: bytes,
    meeting_id: UUID,
    today: date,
    meeting_days: tuple[date, date],
    *,
    slotted: bool = False,
) -> tuple[TicketData | None, Reason | None]:
    """What a scanner can decide with only the meeting's public key: signature, meeting and day.

    A slot's ticket is valid on the slot's day only; a meeting's ticket on every day the meeting covers.
    """
    try:
        data = verify(code, public_key)
    except BadTicket:
        return None, "invalid_signature"
    if data.meeting_prefix != meeting_prefix(meeting_id):
        return data, "wrong_meeting"
    first, last = meeting_days
    valid = today == data.day if slotted else first <= today <= last
    return data, None if valid else "invalid_time"
