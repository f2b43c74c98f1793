"""Sealing, keyed pseudonyms, the public/private split of the registry and the Redis ACL rules."""

from __future__ import annotations

import hashlib

import pytest

from civic.services import consumers
from shared.bus.acl import acl_file, service_key_patterns, subscriber_rule
from shared.bus.streams import Keys
from shared.contracts.registration import PersonErasedV2, RegistrationConfirmedV2
from shared.contracts.registry import REGISTRY
from shared.contracts.spec import spec
from shared.privacy import new_key, open_sealed, person_hmac, seal


def test_sealed_data_opens_only_with_its_key_and_context() -> None:
    key = new_key()
    token = seal(key, {"contact": {"name": "Erika Beispiel"}}, context="registrant:1")
    assert "Erika" not in token
    assert open_sealed(key, token, context="registrant:1") == {"contact": {"name": "Erika Beispiel"}}
    with pytest.raises(ValueError):
        open_sealed(key, token, context="registrant:2")  # moved into another registration's event
    with pytest.raises(ValueError):
        open_sealed(new_key(), token, context="registrant:1")  # another key (or a deleted one made anew)
    assert seal(key, {"a": 1}, context="x") != seal(key, {"a": 1}, context="x")  # a fresh nonce each time


def test_person_hmac_is_keyed_and_normalised() -> None:
    phone = "+49481973501"
    a = person_hmac("secret-a" * 4, "phone", phone)
    assert a == person_hmac("secret-a" * 4, "phone", f" {phone} ")
    assert a != person_hmac("secret-b" * 4, "phone", phone)
    assert a != hashlib.sha256(phone.encode()).hexdigest()
    assert person_hmac("s" * 32, "email", "Erika@Example.org") == person_hmac("s" * 32, "email", "erika@example.org")
    assert person_hmac("s" * 32, "email", "x") != person_hmac("s" * 32, "phone", "x")


def test_no_public_event_type_carries_personal_fields() -> None:
    for s in REGISTRY:
        if s.personal_fields:
            assert s.visibility == "private", s.type
    assert REGISTRY.get("civic.registration.registration.confirmed.v2").stream == "private.registration"
    assert "private.registration" not in REGISTRY.public_streams()
    with pytest.raises(ValueError, match="must be private"):
        spec("civic.registration.x.happened.v9", PersonErasedV2, "registration", "x", ("email_hmac",))
    assert Keys("p").stream("private.registration") == "p:private:registration"
    assert Keys("p").stream("registration") == "p:stream:registration"
    assert RegistrationConfirmedV2.model_fields["sealed"].is_required()


def test_acl_rules_give_subscribers_public_streams_only() -> None:
    keys = Keys("civic")
    rule = subscriber_rule("pw", keys)
    assert "~civic:stream:*" in rule.split() and "private" not in rule
    assert "pw" not in rule  # stored hashed
    for forbidden in ("+xadd", "+xdel", "+xtrim", "+xgroup|destroy", "+xgroup|setid", "+@all", "+@write"):
        assert forbidden not in rule.split()
    subscriptions = consumers()
    notifications = service_key_patterns("notifications", keys, subscriptions["notifications"])
    assert "civic:private:registration" in notifications
    assert not [p for p in service_key_patterns("content", keys, subscriptions["content"]) if ":private:" in p]
    assert not [p for p in service_key_patterns("surveys", keys, subscriptions["surveys"]) if ":private:" in p]
    text = acl_file({"registration": "a", "notifications": "b"}, "c", keys, subscriptions, admin_password="d")
    assert text.splitlines()[0].startswith("user default on #")
    assert len(text.splitlines()) == 4
    assert acl_file({}, "c", keys, subscriptions).splitlines()[0] == "user default off"
