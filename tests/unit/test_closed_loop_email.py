"""Email normalization, the keyed HMAC, pseudonymized events and redacted raw bytes."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from events.catalog import LeadCreated
from events.closed_loop import EmailRules
from events.codec import decode, encode
from events.envelope import make_event
from projections.closed_loop.email import (
    email_key,
    hmac_key,
    normalize_email,
    redact_bytes,
    redact_text,
)
from projections.closed_loop.privacy import pseudonymize
from tests.unit.factories import LEAD, SOURCE, at

RULES = EmailRules()
KEY = b"test-key"


def test_gmail_dots_plus_tags_case_and_spaces_are_one_address() -> None:
    assert normalize_email("John.Doe+x@Gmail.com", RULES) == "johndoe@gmail.com"
    assert normalize_email("johndoe@gmail.com", RULES) == "johndoe@gmail.com"
    assert email_key("John.Doe+x@Gmail.com", RULES, KEY) == email_key(
        "johndoe@gmail.com", RULES, KEY
    )


def test_googlemail_is_an_alias_of_gmail() -> None:
    assert normalize_email("j.doe@GoogleMail.com", RULES) == "jdoe@gmail.com"


def test_dots_are_kept_on_domains_that_do_not_ignore_them() -> None:
    assert normalize_email("John.Doe@Example.com", RULES) == "john.doe@example.com"
    assert email_key("john.doe@example.com", RULES, KEY) != email_key(
        "johndoe@example.com", RULES, KEY
    )


def test_surrounding_whitespace_and_case_do_not_matter() -> None:
    assert normalize_email("  Ada.Lovelace@Example.COM \n", RULES) == "ada.lovelace@example.com"


def test_plus_tags_are_dropped_on_every_domain_unless_configured_off() -> None:
    assert normalize_email("ada+news@example.com", RULES) == "ada@example.com"
    keep = EmailRules(strip_plus=False)
    assert normalize_email("ada+news@example.com", keep) == "ada+news@example.com"


def test_dotless_domains_are_configuration() -> None:
    rules = EmailRules(dotless_domains=("example.org",), domain_aliases={})
    assert normalize_email("a.b@example.org", rules) == "ab@example.org"
    assert normalize_email("a.b@gmail.com", rules) == "a.b@gmail.com"


@pytest.mark.parametrize("raw", ["", "   ", "no-at-sign", "@example.com", "ada@", "+x@gmail.com"])
def test_text_that_is_not_an_address_has_no_key(raw: str) -> None:
    assert normalize_email(raw, RULES) is None
    assert email_key(raw, RULES, KEY) is None


def test_the_key_is_a_versioned_hmac_sha256_of_the_normalized_address() -> None:
    expected = hmac.new(KEY, b"johndoe@gmail.com", hashlib.sha256).hexdigest()
    assert hmac_key("johndoe@gmail.com", KEY) == "ek1:" + expected
    assert hmac_key("johndoe@gmail.com", b"another-key") != hmac_key("johndoe@gmail.com", KEY)


def test_a_created_event_loses_its_address_and_gains_its_key() -> None:
    event = make_event(
        LeadCreated(stage="lead", email="John.Doe+x@Gmail.com", company="Acme"),
        id="e1", subject=LEAD, source=SOURCE, time=at(0),
    )  # fmt: skip
    keyed = pseudonymize(event, RULES, KEY)
    assert isinstance(keyed.data, LeadCreated)
    assert keyed.data.email is None
    assert keyed.data.email_key == email_key("johndoe@gmail.com", RULES, KEY)
    assert keyed.data.company == "Acme"
    assert b"Gmail" not in encode(keyed)
    assert b"@" not in encode(keyed)
    assert decode(encode(keyed)) == keyed, "the archived form decodes to the same event"


def test_events_without_an_address_are_left_alone() -> None:
    event = make_event(LeadCreated(stage="lead"), id="e1", subject=LEAD, source=SOURCE, time=at(0))
    assert pseudonymize(event, RULES, KEY) is event


def test_a_v1_created_event_with_an_email_still_decodes() -> None:
    raw = orjson.dumps(
        {"specversion": "1.0", "id": "e1", "source": "crm", "type": "lead.created",
         "subject": LEAD, "time": "2026-01-05T09:00:00Z", "schemaversion": 1,
         "data": {"stage": "lead", "email": "ada@example.com"}}
    )  # fmt: skip
    event = decode(raw)
    assert event.schemaversion == 2
    assert isinstance(event.data, LeadCreated)
    assert event.data.email == "ada@example.com"


def test_addresses_in_raw_bytes_and_text_are_replaced_by_their_keys() -> None:
    raw = b'{"data": {"email": "John.Doe+x@Gmail.com"}, "note": "cc ada@example.com", "x": "\xff"'
    redacted = redact_bytes(raw, RULES, KEY)
    assert b"Gmail" not in redacted
    assert b"ada@example.com" not in redacted
    expected = email_key("johndoe@gmail.com", RULES, KEY)
    assert expected is not None
    assert expected.encode() in redacted
    assert redacted.endswith(b'"x": "\xff"'), "bytes that are not UTF-8 survive unchanged"
    assert "@" not in redact_text("from bob@example.com to eve@example.org", RULES, KEY)


def test_redacted_json_stays_json() -> None:
    raw = orjson.dumps({"data": {"email": "bob@example.com"}, "id": "x"})
    assert orjson.loads(redact_bytes(raw, RULES, KEY))["id"] == "x"
