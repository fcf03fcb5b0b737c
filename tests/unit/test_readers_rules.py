"""Reader card rules: registration validation, activation, expiry, card numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biblioverse.readers.rules import (
    STAFF_TRANSITIONS,
    Category,
    Channel,
    RegistrationData,
    Status,
    activation_errors,
    can_move,
    effective_status,
    expiry_for,
    initial_status,
    luhn_valid,
    new_card_number,
    password_errors,
    pin_errors,
    registration_errors,
)

TODAY = dt.date(2026, 11, 18)


def fields(data: RegistrationData, channel: Channel = Channel.ONLINE) -> dict[str, str]:
    return {e.field: e.code for e in registration_errors(data, today=TODAY, channel=channel)}


def test_a_valid_adult_online_registration_has_no_errors() -> None:
    data = RegistrationData("王芳", dt.date(1990, 5, 1), "adult", email="wf@example.org")
    assert fields(data) == {}


def test_each_broken_field_is_named() -> None:
    data = RegistrationData("", dt.date(2030, 1, 1), "wizard", email="not-an-email", phone="x")
    assert fields(data) == {
        "name": "required",
        "category": "invalid_category",
        "email": "invalid_email",
        "phone": "invalid_phone",
        "birth_date": "in_future",
    }


def test_online_registration_needs_an_email_but_the_desk_does_not() -> None:
    data = RegistrationData("Ann", dt.date(1990, 5, 1), "adult")
    assert fields(data) == {"email": "required"}
    assert fields(data, Channel.DESK) == {}


def test_children_register_with_a_guardian() -> None:
    child = RegistrationData("小明", dt.date(2018, 3, 1), "child", email="p@example.org")
    assert fields(child) == {"guardian_name": "required"}
    with_guardian = RegistrationData(
        "小明", dt.date(2018, 3, 1), "child", email="p@example.org", guardian_name="王丽"
    )
    assert fields(with_guardian) == {}


def test_category_must_fit_the_age() -> None:
    assert (
        fields(RegistrationData("A", dt.date(2000, 1, 1), "child", email="a@b.cn"))["category"]
        == "too_old_for_child"
    )
    assert (
        fields(RegistrationData("A", dt.date(2012, 1, 1), "adult", email="a@b.cn"))["category"]
        == "too_young_for_adult"
    )


def test_staff_cards_are_not_self_service() -> None:
    data = RegistrationData("A", dt.date(1980, 1, 1), "staff", email="a@b.cn")
    assert fields(data) == {"category": "not_self_service"}
    assert fields(data, Channel.DESK) == {}


def test_online_cards_wait_for_activation_desk_cards_do_not() -> None:
    assert initial_status(Channel.ONLINE) is Status.PENDING
    assert initial_status(Channel.DESK) is Status.ACTIVE
    assert initial_status(Channel.IMPORT) is Status.ACTIVE
    assert activation_errors(Status.PENDING) == []
    assert activation_errors(Status.ACTIVE)[0].code == "not_pending"


def test_expiry_depends_on_category_and_shows_as_expired() -> None:
    assert expiry_for(Category.VISITOR, TODAY) == TODAY + dt.timedelta(days=30)
    assert expiry_for(Category.STUDENT, TODAY) == TODAY + dt.timedelta(days=365)
    assert effective_status(Status.ACTIVE, TODAY - dt.timedelta(days=1), TODAY) is Status.EXPIRED
    assert effective_status(Status.ACTIVE, TODAY, TODAY) is Status.ACTIVE
    assert effective_status(Status.BLOCKED, TODAY - dt.timedelta(days=1), TODAY) is Status.BLOCKED


def test_every_staff_transition_is_walked() -> None:
    for current in Status:
        for new in Status:
            assert can_move(current, new) == (new in STAFF_TRANSITIONS[current])
    assert can_move(Status.BLOCKED, Status.ACTIVE)
    assert not can_move(Status.PENDING, Status.EXPIRED)


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("12", "invalid_pin"),
        ("1234567", "invalid_pin"),
        ("12a4", "invalid_pin"),
        ("1111", "weak_pin"),
    ],
)
def test_pin_rules(pin: str, code: str) -> None:
    assert pin_errors(pin)[0].code == code


def test_password_rules() -> None:
    assert password_errors("short")[0].code == "too_short"
    assert password_errors("29000000000015", card="29000000000015")[0].code == "same_as_card"
    assert password_errors("a good passphrase") == []


@given(st.integers(min_value=0, max_value=1000))
def test_generated_card_numbers_carry_a_valid_check_digit(_: int) -> None:
    card = new_card_number()
    assert len(card) == 14 and card.startswith("2900") and luhn_valid(card)
    # A single mistyped digit is caught.
    wrong = card[:-2] + str((int(card[-2]) + 1) % 10) + card[-1]
    assert not luhn_valid(wrong)


def test_a_card_renewed_runs_on_from_its_date_or_from_today() -> None:
    from biblioverse.readers.rules import Category, renewed_expiry

    today = dt.date(2026, 11, 18)
    assert renewed_expiry(Category.STUDENT, dt.date(2026, 12, 1), today) == dt.date(2027, 12, 1)
    assert renewed_expiry(Category.STUDENT, dt.date(2026, 1, 1), today) == dt.date(2027, 11, 18)


def test_reasons_and_notes_are_required_and_bounded() -> None:
    from biblioverse.readers.rules import note_errors, reason_errors, same_person_key

    assert [e.code for e in reason_errors(" ")] == ["required"]
    assert [e.code for e in reason_errors("x" * 201)] == ["too_long"]
    assert reason_errors("lost card") == []
    assert [e.code for e in note_errors("")] == ["required"]
    assert same_person_key("  Ann   LEE ") == same_person_key("ann lee")
