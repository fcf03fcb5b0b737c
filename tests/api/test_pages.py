"""Pages through HTTP: sign-in, CSRF, registration errors, the language switch, scope."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import readers
from tests import factories
from tests.factories import READER_PW, STAFF_PW, World


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field on the form"
    return m.group(1)


def sign_in(client: TestClient, kind: str, login: str, password: str) -> None:
    """``kind`` is who the test means to sign in; the page finds them by the login alone."""
    token = csrf_of(client.get("/signin").text)
    r = client.post(
        "/signin",
        data={"csrf_token": token, "login": login, "password": password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_home_lists_libraries_with_todays_hours(client: TestClient, world: World) -> None:
    html = client.get("/").text
    for name in ("Central Library", "Airport Library", "Community Library"):
        assert name in html
    assert html.count("09:00</time>–<time>21:00") == 3
    assert "Open now" in html


def test_home_in_chinese(client: TestClient, world: World) -> None:
    r = client.get("/lang/zh_Hans?next=/", follow_redirects=True)
    assert '<html lang="zh-Hans">' in r.text
    assert "我们的图书馆" in r.text and "正在开放" in r.text and "central图书馆" in r.text


def test_a_form_without_the_csrf_token_is_refused(client: TestClient, world: World) -> None:
    client.get("/signin")
    r = client.post(
        "/signin",
        data={"kind": "reader", "login": "CARD000001", "password": READER_PW},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 403
    assert "The form has expired" in r.text
    r = client.post(
        "/signin",
        data={
            "csrf_token": "forged",
            "kind": "reader",
            "login": "CARD000001",
            "password": READER_PW,
        },
    )
    assert r.status_code == 403


def test_reader_signs_in_and_sees_only_their_account(client: TestClient, world: World) -> None:
    sign_in(client, "reader", "CARD000001", READER_PW)
    html = client.get("/account").text
    assert "CARD000001" in html and "Reader 1" in html
    assert "CARD000002" not in html
    staff = client.get("/staff", headers={"Accept": "text/html"})
    assert staff.status_code == 403


def test_wrong_password_on_the_page_says_so_without_detail(
    client: TestClient, world: World
) -> None:
    token = csrf_of(client.get("/signin").text)
    r = client.post(
        "/signin",
        data={"csrf_token": token, "kind": "reader", "login": "CARD000001", "password": "nope"},
    )
    assert r.status_code == 401
    assert "Wrong card number, e-mail, user name or password." in r.text


def test_next_parameter_cannot_leave_the_site(client: TestClient, world: World) -> None:
    token = csrf_of(client.get("/signin").text)
    r = client.post(
        "/signin",
        data={
            "csrf_token": token,
            "kind": "staff",
            "login": "admin",
            "password": STAFF_PW,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/staff"
    assert (
        client.get("/lang/en?next=https://evil.example/", follow_redirects=False).headers[
            "location"
        ]
        == "/"
    )


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient, world: World) -> None:
    r = client.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=/account"
    assert (
        client.get("/staff/readers", follow_redirects=False)
        .headers["location"]
        .startswith("/signin")
    )


def test_registration_form_shows_field_errors_and_keeps_input(
    client: TestClient, world: World
) -> None:
    token = csrf_of(client.get("/register").text)
    r = client.post(
        "/register",
        data={
            "csrf_token": token,
            "name": "李雷",
            "birth_date": "",
            "category": "adult",
            "home_library_id": str(world.central.id),
            "email": "bad",
            "password": "abcdefgh",
            "password2": "different",
        },
    )
    assert r.status_code == 422
    assert 'id="e-birth_date"' in r.text and 'id="e-password2"' in r.text
    assert 'value="李雷"' in r.text and "abcdefgh" not in r.text


def test_registration_signs_the_new_reader_in(client: TestClient, world: World) -> None:
    client.get("/lang/zh_Hans")
    token = csrf_of(client.get("/register").text)
    r = client.post(
        "/register",
        data={
            "csrf_token": token,
            "name": "韩梅梅",
            "birth_date": "1995-08-08",
            "category": "adult",
            "home_library_id": str(world.airport.id),
            "email": "meimei@example.org",
            "password": "a long passphrase",
            "password2": "a long passphrase",
        },
    )
    assert r.status_code == 200 and "欢迎！您的读者证已注册成功。" in r.text
    assert "待激活" in r.text and "韩梅梅" in r.text


def test_privacy_switch_saves_through_htmx(client: TestClient, world: World) -> None:
    sign_in(client, "reader", "CARD000001", READER_PW)
    token = csrf_of(client.get("/account").text)
    r = client.post(
        "/account/settings",
        data={"keep_history": "on", "email": "reader1@example.org", "phone": ""},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 200 and "Saved." in r.text and "checked" in r.text


def test_librarian_console_shows_only_readers_in_scope(client: TestClient, world: World) -> None:
    sign_in(client, "staff", "community-lib", STAFF_PW)
    html = client.get("/staff/readers").text
    assert "CARD000002" in html and "CARD000001" not in html
    assert client.get("/staff/audit").status_code == 200


def test_cataloguer_has_no_reader_or_audit_pages(client: TestClient, world: World) -> None:
    sign_in(client, "staff", "cataloguer", STAFF_PW)
    console = client.get("/staff").text
    assert 'href="/staff/readers"' not in console
    assert client.get("/staff/readers").status_code == 403
    assert client.get("/staff/audit").status_code == 403


def test_staff_activates_a_pending_card_from_the_list(client: TestClient, world: World) -> None:
    reg = register_pending(client, world, 1)
    sign_in(client, "staff", "community-lib", STAFF_PW)
    token = csrf_of(client.get("/staff/readers").text)
    r = client.post(
        f"/staff/readers/{reg['id']}/activate",
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert (
        r.status_code == 200 and f'id="reader-{reg["id"]}"' in r.text and "badge-active" in r.text
    )


def test_libraries_page_shows_hours_closed_days_and_locations(
    client: TestClient, world: World
) -> None:
    sign_in(client, "staff", "airport-desk", STAFF_PW)
    html = client.get("/staff/libraries").text
    assert "Weekly hours" in html
    assert re.search(r"<dt>Mon</dt>\s*<dd>09:00–21:00</dd>", html)
    assert "Consortium" in html and "Branch" in html


def register_pending(client: TestClient, world: World, n: int) -> dict[str, object]:
    r = client.post(
        "/api/v1/readers/register",
        json={
            "name": f"Pending {n}",
            "birth_date": "1990-01-01",
            "category": "adult",
            "home_library_id": world.community.id,
            "email": f"pending{n}@example.org",
            "password": "a long passphrase",
        },
    )
    assert r.status_code == 201
    return dict(r.json())


def test_readers_can_be_filtered_by_status_and_paged(client: TestClient, world: World) -> None:
    for n in range(3):
        register_pending(client, world, n)
    sign_in(client, "staff", "community-lib", STAFF_PW)
    pending = client.get("/staff/readers?status=pending").text
    assert "Showing 1–3 of 3" in pending and "CARD000002" not in pending
    everyone = client.get("/staff/readers").text
    assert "Showing 1–4 of 4" in everyone
    assert "/staff/readers?status=pending" in client.get("/staff").text


def test_pages_of_readers(client: TestClient, world: World, session: Session) -> None:
    actor = world.actor(session, world.community_librarian)
    text = "card_number,name,birth_date,home_library,category\n" + "".join(
        f"PG{n:04d},Reader {n:03d},1980-01-01,community,adult\n" for n in range(60)
    )
    assert readers.import_csv(session, actor, text, at=factories.NOW).imported == 60
    session.commit()
    sign_in(client, "staff", "community-lib", STAFF_PW)
    first = client.get("/staff/readers?q=PG").text
    assert "Showing 1–50 of 60" in first and "Page 1 of 2" in first and 'rel="next"' in first
    second = client.get("/staff/readers?q=PG&page=2", headers={"HX-Request": "true"}).text
    assert "Showing 51–60 of 60" in second and "<html" not in second


def test_fragments_and_full_pages_are_cached_apart(client: TestClient, world: World) -> None:
    sign_in(client, "staff", "community-lib", STAFF_PW)
    r = client.get("/staff/readers?q=x", headers={"HX-Request": "true"})
    assert "HX-Request" in r.headers["vary"]
    assert r.headers["cache-control"] == "no-store"  # signed-in pages stay off shared disks


def test_activating_a_card_someone_else_activated_shows_it_as_it_is(
    client: TestClient, world: World
) -> None:
    reg = register_pending(client, world, 9)
    sign_in(client, "staff", "community-lib", STAFF_PW)
    token = csrf_of(client.get("/staff/readers").text)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    first = client.post(f"/staff/readers/{reg['id']}/activate", headers=headers)
    assert "Activated. The card is valid from today." in first.text
    again = client.post(f"/staff/readers/{reg['id']}/activate", headers=headers)
    assert again.status_code == 200
    assert "no longer pending" in again.text and "badge-active" in again.text


def test_settings_error_keeps_what_the_reader_typed(client: TestClient, world: World) -> None:
    sign_in(client, "reader", "CARD000001", READER_PW)
    token = csrf_of(client.get("/account").text)
    r = client.post(
        "/account/settings",
        data={"email": "a@b", "phone": "", "preferred_locale": "en"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 422
    assert 'value="a@b"' in r.text and "This is not an e-mail address." in r.text


def test_an_expired_form_under_htmx_gets_a_short_alert(client: TestClient, world: World) -> None:
    sign_in(client, "reader", "CARD000001", READER_PW)
    r = client.post(
        "/account/settings",
        data={"email": "x@example.org"},
        headers={"HX-Request": "true", "X-CSRF-Token": "stale"},
    )
    assert r.status_code == 403
    assert r.text.startswith('<p class="flash-error" role="alert" data-flash>')


def test_error_pages_keep_the_signed_in_header_and_speak_chinese(
    client: TestClient, world: World
) -> None:
    sign_in(client, "reader", "CARD000001", READER_PW)
    client.get("/lang/zh_Hans")
    r = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "您访问的页面不存在。" in r.text and "退出" in r.text and "Not Found" not in r.text
