"""The SIP2 wire codec: checksums against real pairs, the tolerant reading of requests, the
strict writing of responses (checked with pysip2's codec), and fuzzing of the parser."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pysip2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biblioverse.sip2 import acs
from biblioverse.sip2.protocol import (
    FrameError,
    Response,
    checksum,
    clean_frame,
    encode,
    format_date,
    parse,
    parse_date,
    trailer,
)

# A copy of ../shared/vectors/sip2/checksums.json (message/checksum pairs from Evergreen's
# SIPServer tests), kept in the repository so that a clean checkout tests against it.
VECTORS = Path(__file__).parents[1] / "data" / "sip2_checksums.json"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _pairs() -> list[tuple[str, str]]:
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    return [(p["message"], p["checksum"]) for p in data["pairs"]]


@pytest.mark.parametrize(("message", "expected"), _pairs())
def test_checksum_vectors(message: str, expected: str) -> None:
    data = message.encode("utf-8")
    assert checksum(data) == expected
    assert pysip2.calculate_checksum(data) == expected  # and the third-party codec agrees
    t = trailer(data + expected.encode())
    assert t.checksum_ok is True
    assert t.sequence == message.rsplit("AY", 1)[1][:-2]
    assert trailer(data + expected.lower().encode()).checksum_ok is True  # lower-case hex


@pytest.mark.parametrize(("message", "expected"), _pairs()[:5])
def test_a_wrong_checksum_is_detected(message: str, expected: str) -> None:
    wrong = f"{(int(expected, 16) + 1) & 0xFFFF:04X}"
    assert trailer(message.encode() + wrong.encode()).checksum_ok is False
    # One changed character in the message body is caught too.
    tampered = message.replace("AB", "AC", 1).encode()
    assert trailer(tampered + expected.encode()).checksum_ok is False


def test_a_checksum_without_its_leading_zeros_is_accepted() -> None:
    # Some clients format the checksum without padding. A sum above 0xF000 has one: a
    # message of some 700 characters.
    for n in range(2000):
        body = f"2300120261118    140000AOcentral|AF{'x' * (600 + n)}|AY1AZ".encode()
        value = checksum(body)
        if value.startswith("0"):
            break
    else:
        pytest.fail("no message with a leading-zero checksum found")
    short = value.lstrip("0") or "0"
    assert trailer(body + short.encode()).checksum_ok is True


@pytest.mark.parametrize(
    "frame",
    [
        b"9900302.00AY1AZ",  # empty
        b"9900302.00AY1AZ|",
        b"9900302.00AZ",  # right after the fixed fields, no sequence number
        b"9900302.00AY1AZGGGG",  # not hex
        b"9900302.00AY1AZ12G4",
        b"9900302.00AY1AZ12345",  # too long
        b"11NN20261118    140000                  AOcentral|AACARD1|ABR-1|AC|AZ",
        b"97AZ",
    ],
)
def test_an_empty_or_unreadable_checksum_is_a_wrong_one(frame: bytes) -> None:
    t = trailer(frame)
    assert t.checksum is not None and t.checksum_ok is False


def test_letters_az_ending_a_value_are_no_checksum() -> None:
    # the last field without its separator, its value ending in "AZ"
    t = trailer(b"1720261118    140000AOcentral|ABGAZ")
    assert (t.checksum, t.checksum_ok) == (None, None)
    assert parse(t.body.decode()).get("AB") == "GAZ"


def test_frames_lose_line_feeds_and_trailing_nuls() -> None:
    assert clean_frame(b"\n9900302.00\x00\x00") == b"9900302.00"
    assert clean_frame(b"9300CNkiosk|COsecret|\r\n") == b"9300CNkiosk|COsecret|"


def test_a_checkout_with_a_blank_due_date_is_read() -> None:
    text = "11YN20261118    140000" + " " * 18 + "AOcentral|AACARD000001|ABB-1|AC|ADxyz|BON|"
    r = parse(text)
    assert r.name == "checkout"
    assert r.flag("sc_renewal_policy") and not r.flag("no_block")
    assert r.fixed["nb_due_date"].strip() == ""
    assert r.get("AA") == "CARD000001" and r.get("AB") == "B-1" and r.get("AC") == ""
    assert parse_date(r.fixed["transaction_date"], SHANGHAI) == dt.datetime(
        2026, 11, 18, 14, 0, tzinfo=SHANGHAI
    )


def test_fixed_fields_of_the_wrong_length_are_read_up_to_the_first_field() -> None:
    # The due date left out entirely, and a transaction date with no zone.
    r = parse("11NN20261118140000AOcentral|AACARD1|ABB-1|AC|")
    assert r.get("AA") == "CARD1" and r.get("AB") == "B-1"
    assert parse_date(r.fixed["transaction_date"], SHANGHAI) == dt.datetime(
        2026, 11, 18, 14, 0, tzinfo=SHANGHAI
    )
    assert r.fixed["nb_due_date"] == ""


def test_unknown_and_blank_fields_and_a_missing_last_separator() -> None:
    r = parse("2300120261118    140000AOcentral|ZZwhatever||AACARD1|AC|ADpin")
    assert r.fields["ZZ"] == ["whatever"]  # kept, and ignored by the handlers
    assert r.get("AD") == "pin"  # the last field had no separator
    assert r.get("XY") == ""


def test_utc_dates_and_blank_dates() -> None:
    assert parse_date("20261118   Z060000", SHANGHAI) == dt.datetime(2026, 11, 18, 6, tzinfo=dt.UTC)
    assert parse_date(" " * 18, SHANGHAI) is None
    assert parse_date("20261340    000000", SHANGHAI) is None  # no 13th month: no date
    assert parse_date("soon", SHANGHAI) is None
    # Separators some terminals put in are skipped.
    assert parse_date("2026-11-18", SHANGHAI) == dt.datetime(2026, 11, 18, tzinfo=SHANGHAI)
    assert format_date(dt.datetime(2026, 11, 18, 6, tzinfo=dt.UTC), SHANGHAI) == (
        "20261118    140000"
    )


@pytest.mark.parametrize("text", ["", "9", "XX123", "42 not a command", "\x00\x01"])
def test_unreadable_frames_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(FrameError):
        parse(text)


def test_responses_are_strict_sip2() -> None:
    status = acs.acs_status(
        None, dt.datetime(2026, 11, 18, 6, tzinfo=dt.UTC), timeout_s=30, retries=3
    )
    frame = encode(status, encoding="utf-8", sequence="7", error_detection=True)
    decoded = pysip2.decode_as(frame, pysip2.ACSStatusResponse, encoding="utf-8")
    assert decoded.sequence_number == 7
    assert decoded.message.online_status == "N"
    assert decoded.message.supported_messages == "N" * 16
    # A value with the separator or a carriage return in it cannot break the frame.
    odd = Response("36", "Y20261118    140000", [("AO", "a|b"), ("AA", "x\ry"), ("AF", "z" * 300)])
    ended = pysip2.decode_as(
        encode(odd, encoding="utf-8", sequence=None, error_detection=False),
        pysip2.EndSessionResponse,
        encoding="utf-8",
    ).message
    assert ended.institution_id == "a/b"
    assert ended.patron_identifier == "x y"
    assert len(ended.screen_message[0]) == 255


def test_every_negative_answer_is_strict_sip2() -> None:
    now = dt.datetime(2026, 11, 18, 6, tzinfo=dt.UTC)
    for command, (reply, *_rest) in acs._NEGATIVE.items():
        request = parse(command + "0" * 40)  # a request with nothing readable in it
        response = acs.negative(request, now, acs.NOT_LOGGED_IN)
        assert response is not None and response.command == reply
        frame = encode(response, encoding="utf-8", sequence="1", error_detection=True)
        pysip2.decode_message(frame, encoding="utf-8")  # raises if a field is missing


def test_the_supported_messages_say_what_is_answered() -> None:
    flags = acs.supported_messages()
    assert len(flags) == 16
    assert flags == "Y" * 16  # every message of the standard has a handler


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_no_bytes_break_the_trailer_reader(data: bytes) -> None:
    t = trailer(clean_frame(data))
    assert t.checksum_ok in (True, False, None)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["93", "99", "23", "63", "11", "09", "29", "65", "17", "19", "15", "37", "01"])
    | st.text(max_size=3),
    st.text(max_size=200),
)
def test_the_parser_reads_any_text_or_says_why_not(command: str, rest: str) -> None:
    try:
        request = parse(command + rest)
    except FrameError:
        return
    for code, values in request.fields.items():
        assert len(code) == 2 and all("|" not in v for v in values)
