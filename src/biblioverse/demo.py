"""The demo consortium: a central library on two floors, an airport branch and a community
branch, with hours and holidays, staff of every role and 500 readers with plausible English
and Chinese names. Deterministic: the same seed gives the same consortium."""

from __future__ import annotations

import datetime as dt
import gzip
import random
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, circulation, libraries, readers, sip2
from biblioverse import shelves as smart_shelves
from biblioverse.access import Role
from biblioverse.i18n import N_
from biblioverse.libraries import OrgKind, Period, UnitInput
from biblioverse.readers.rules import luhn_check_digit
from biblioverse.security import hash_secret

STAFF_PASSWORD = "biblioverse-demo"
READER_PASSWORD = "reader-demo"
READER_PIN = "2580"


def demo_card(n: int) -> str:
    body = f"2900{n:09d}"
    return body + luhn_check_digit(body)


@dataclass(frozen=True)
class Login:
    who: str
    login: str
    password: str


def _hours(spec: dict[int, list[tuple[str, str]]]) -> dict[int, list[Period]]:
    parse = libraries.rules.parse_hhmm
    return {wd: [Period(parse(a), parse(b)) for a, b in ps] for wd, ps in spec.items()}


HOLIDAYS = [
    (dt.date(2026, 1, 1), "New Year's Day", "元旦"),
    (dt.date(2026, 2, 17), "Spring Festival", "春节"),
    (dt.date(2026, 4, 5), "Qingming Festival", "清明节"),
    (dt.date(2026, 5, 1), "Labour Day", "劳动节"),
    (dt.date(2026, 6, 19), "Dragon Boat Festival", "端午节"),
    (dt.date(2026, 9, 25), "Mid-Autumn Festival", "中秋节"),
    (dt.date(2026, 10, 1), "National Day", "国庆节"),
    (dt.date(2027, 1, 1), "New Year's Day", "元旦"),
    (dt.date(2027, 2, 6), "Spring Festival", "春节"),
    (dt.date(2027, 2, 7), "Spring Festival", "春节"),
]

EN_GIVEN = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Alexander",
    "Emily",
    "Daniel",
    "Ella",
    "Michael",
    "Grace",
    "Samuel",
    "Chloe",
    "David",
    "Lily",
    "Joseph",
    "Hannah",
    "Thomas",
    "Zoe",
    "Matthew",
    "Nora",
    "Andrew",
    "Ruth",
    "Peter",
    "Alice",
    "George",
    "Clara",
]
EN_FAMILY = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
]
ZH_FAMILY = [
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
    "胡",
    "郭",
    "何",
    "高",
    "林",
    "罗",
    "郑",
    "梁",
    "谢",
    "宋",
    "唐",
    "许",
    "韩",
    "冯",
    "邓",
    "曹",
]
ZH_GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "华",
    "鑫",
    "宇",
    "浩然",
    "子涵",
    "欣怡",
    "梓萱",
    "一诺",
    "思远",
    "雨桐",
    "嘉怡",
    "俊杰",
    "晓明",
    "文博",
    "佳琪",
    "子轩",
    "若曦",
    "天佑",
    "书瑶",
    "明轩",
]


def _name(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(ZH_FAMILY) + rng.choice(ZH_GIVEN)
    return f"{rng.choice(EN_GIVEN)} {rng.choice(EN_FAMILY)}"


SAMPLE = Path(__file__).parent / "catalog" / "data" / "loc-sample.mrc.gz"
ITEM_TYPES = ["book"] * 14 + ["reference", "children", "precious", "audiovisual", "periodical"]


FIRST_BARCODE = 39000000


# Each room holds a run of the classification, as in a real library: copies of a library go
# to the first of its rooms whose classes their call number starts with; None takes the rest.
ROOMS: dict[str, list[tuple[str, tuple[str, ...] | None]]] = {
    "central": [
        ("1F-CHILD", ("PZ",)),
        ("1F-LIT", ("P", "M", "N")),
        ("2F-RARE", ("D", "E", "F")),
        ("2F-SCI", tuple("QRSTUVZ")),
        ("2F-SOC", None),
    ],
    "airport": [("1F-TRAVEL", ("G", "D", "E", "F")), ("1F-POP", None)],
    "community": [("1F-FAMILY", ("PZ", "L")), ("1F-GEN", None)],
}
SHELF_PREFIX = {
    "1F-CHILD": "C",
    "1F-LIT": "L",
    "2F-RARE": "R",
    "2F-SCI": "S",
    "2F-SOC": "H",
    "1F-TRAVEL": "T",
    "1F-POP": "P",
    "1F-FAMILY": "F",
    "1F-GEN": "G",
}


def room_for(library: str, call_number: str | None) -> str | None:
    if not call_number:
        return None
    for room, classes in ROOMS.get(library, []):
        if classes is None or call_number.upper().startswith(classes):
            return room
    return None


def seed_catalogue(session: Session, *, at: dt.datetime, rng: random.Random) -> int:
    """Public-domain Library of Congress records with copies spread over the libraries."""
    catalog.import_marc(session, None, gzip.decompress(SAMPLE.read_bytes()), at=at)
    units = {u.code: u for u in libraries.service_points(session)}
    places = {code: libraries.locations_of(session, unit.id) for code, unit in units.items()}
    weights = {"central": 6, "community": 3, "airport": 1}
    rows = []
    barcode = FIRST_BARCODE
    for record_id, call_number in session.execute(
        select(catalog.Record.id, catalog.Record.call_number).order_by(catalog.Record.id)
    ):
        copies = rng.choices([1, 1, 1, 2, 2, 3])[0]
        for code in rng.choices(list(weights), weights=list(weights.values()), k=copies):
            barcode += 1
            location = rng.choice(places[code]) if places[code] else None
            room = room_for(code, call_number)
            if room is not None:
                location = next((loc for loc in places[code] if loc.code == room), location)
            rows.append(
                catalog.NewItem(
                    record_id=record_id,
                    barcode=str(barcode),
                    org_unit_id=units[code].id,
                    item_type=rng.choice(ITEM_TYPES),
                    location_id=location.id if location else None,
                    call_number=call_number,
                    rfid_tag=f"E2801160{barcode:016X}",
                    price=f"{rng.randint(15, 180)}.00",
                )
            )
    catalog.add_items(session, None, rows, at=at)
    return len(rows)


def is_seeded(session: Session) -> bool:
    return session.scalar(select(libraries.OrgUnit.id).limit(1)) is not None


STAFF_USERS = (
    ("admin", "admin (consortium)"),
    ("librarian", "librarian (central library and its branches)"),
    ("airport-librarian", "librarian (airport branch)"),
    ("community-librarian", "librarian (community branch)"),
    ("cataloguer", "cataloguer (central library)"),
    ("circulation", "circulation desk (central library)"),
    ("airport-desk", "circulation desk (airport branch)"),
)
KIOSK_LOGINS = ("kiosk-central", "sorter-central", "kiosk-airport")
KIOSK_PASSWORD = "kiosk-demo-2026"
DEMO_LOGINS: tuple[Login, ...] = (
    *(Login(who, username, STAFF_PASSWORD) for username, who in STAFF_USERS),
    Login("reader 林小雨 (central library)", demo_card(1), READER_PASSWORD),
    Login(f"SIP2 kiosk (port 6001; reader PIN {READER_PIN})", KIOSK_LOGINS[0], KIOSK_PASSWORD),
)


def seed_rules(session: Session, *, at: dt.datetime, consortium_id: int, airport_id: int) -> None:
    """A believable rule matrix: a consortium default, shorter loans for children's and
    audio-visual items, three-hour reading-room loans of reference books, and an airport
    branch whose books float (a traveller returns them anywhere, and they stay there). The
    names are messages (N_), so the rules page shows the demo's rules in the reader's
    language; a name a librarian types is shown as typed."""
    P = circulation.Policy
    for data in (
        circulation.RuleInput(consortium_id, name=N_("Consortium default"), policy=P()),
        circulation.RuleInput(
            consortium_id, reader_category="child", name=N_("Children"), policy=P(max_loans=10)
        ),
        circulation.RuleInput(
            consortium_id,
            item_type="audiovisual",
            name=N_("Audio-visual"),
            policy=P(loan_days=7, renewals=1),
        ),
        circulation.RuleInput(
            consortium_id,
            item_type="reference",
            name=N_("Reference, in the reading room"),
            policy=P(loan_hours=3, renewals=0, self_service=False, mobile_checkout=False),
        ),
        circulation.RuleInput(
            airport_id, name=N_("Airport: travellers"), policy=P(loan_days=21, floating=True)
        ),
    ):
        circulation.save_rule(session, None, data, at=at)


def seed_circulation(session: Session, *, at: dt.datetime, rng: random.Random) -> None:
    """Some weeks of lending before today: open loans (a few overdue, with fines), returns
    at other libraries (copies in transit home), and holds in queues, some set aside. The
    demo reader has loans, a hold and a small fine. Everything goes through the services,
    as a desk would have done it."""
    from biblioverse.circulation import errors as refusals
    from biblioverse.circulation import fees, holds

    units = {u.code: u for u in libraries.service_points(session)}
    active = list(
        session.scalars(
            select(readers.Reader)
            .where(readers.Reader.status == readers.Status.ACTIVE.value)
            .order_by(readers.Reader.id)
        )
    )
    lendable = list(
        session.scalars(
            select(catalog.Item)
            .where(
                catalog.Item.circulates.is_(True),
                catalog.Item.item_type.in_(["book", "children", "periodical"]),
                # The first hundred copies stay on their shelves for the tour and the tests.
                catalog.Item.barcode > str(FIRST_BARCODE + 100),
            )
            .order_by(catalog.Item.id)
        )
    )
    rng.shuffle(lendable)
    borrowers = [r for r in active if r.card_number == demo_card(1)] + rng.sample(active, 60)
    loans: list[circulation.Loan] = []
    for reader in borrowers:
        for _ in range(rng.choice([1, 2, 3])):
            if not lendable:
                break
            item = lendable.pop()
            when = at - dt.timedelta(days=rng.randint(3, 40), hours=rng.randint(0, 6))
            desk = units[rng.choice(["central", "central", "community", "airport"])]
            try:
                loans.append(
                    circulation.checkout(
                        session,
                        None,
                        reader_id=reader.id,
                        barcode=item.barcode,
                        at_unit_id=desk.id,
                        at=when,
                    )
                )
            except refusals.Refused:
                continue
    # A fifth come back, most at the library that lent them, some elsewhere.
    for loan in rng.sample(loans[1:], len(loans) // 5):
        back = units[rng.choice(["central", "community", "airport"])]
        circulation.checkin(
            session,
            None,
            barcode=catalog.get_item(session, loan.item_id).barcode,
            at_unit_id=back.id,
            at=min(at, loan.loaned_at + dt.timedelta(days=rng.randint(1, 20))),
        )
    fees.accrue(session, at)
    # Holds: readers queue for titles on loan; a few for copies on another library's shelf.
    on_loan = [
        item
        for item in (catalog.get_item(session, x.item_id) for x in loans)
        if item.status == catalog.ItemStatus.ON_LOAN.value
    ]
    for item in rng.sample(on_loan, min(25, len(on_loan))):
        for reader in rng.sample(active, rng.choice([1, 1, 2, 3])):
            try:
                holds.place(
                    session,
                    None,
                    reader_id=reader.id,
                    record_id=item.record_id,
                    pickup_unit_id=reader.home_library_id,
                    at=at - dt.timedelta(days=rng.randint(0, 10), minutes=rng.randint(0, 600)),
                )
            except refusals.Refused:
                continue
    for item in lendable[:12]:
        reader = rng.choice(active)
        try:
            holds.place(
                session,
                None,
                reader_id=reader.id,
                record_id=item.record_id,
                pickup_unit_id=reader.home_library_id,
                at=at - dt.timedelta(hours=5),
            )
        except refusals.Refused:
            continue
        if rng.random() < 0.5:  # already fetched from the shelf and scanned
            circulation.checkin(
                session,
                None,
                barcode=item.barcode,
                at_unit_id=item.org_unit_id,
                at=at - dt.timedelta(hours=2),
            )


def seed(
    session: Session, *, at: dt.datetime, readers_count: int = 500, seed_value: int = 2026
) -> None:
    """Build the demo consortium in an empty database (logins: ``DEMO_LOGINS``)."""
    rng = random.Random(seed_value)
    consortium = libraries.create_unit(
        session,
        None,
        UnitInput(
            OrgKind.CONSORTIUM,
            "consortium",
            "Capital Smart Library Consortium",
            "首都智慧图书馆联盟",
            isil="CN-BVCONS",
        ),
        at=at,
    )
    central = libraries.create_unit(
        session,
        None,
        UnitInput(
            OrgKind.LIBRARY,
            "central",
            "Central Library",
            "中心图书馆",
            parent_id=consortium.id,
            isil="CN-BV0001",
            address="88 Library Avenue, Dongcheng District, Beijing / 北京市东城区图书馆大道88号",
            phone="+86 10 6000 0001",
        ),
        at=at,
    )
    airport = libraries.create_unit(
        session,
        None,
        UnitInput(
            OrgKind.BRANCH,
            "airport",
            "Airport Branch",
            "机场分馆",
            parent_id=central.id,
            isil="CN-BV0001-A",
            address="Terminal 1, Level 4, Departures / 1号航站楼4层出发区",
            phone="+86 10 6000 0002",
        ),
        at=at,
    )
    community = libraries.create_unit(
        session,
        None,
        UnitInput(
            OrgKind.BRANCH,
            "community",
            "Community Branch",
            "社区分馆",
            parent_id=central.id,
            isil="CN-BV0001-C",
            address="12 Willow Lane, Tongzhou District, Beijing / 北京市通州区柳荫巷12号",
            phone="+86 10 6000 0003",
        ),
        at=at,
    )
    daily = [("09:00", "21:00")]
    libraries.set_weekly_hours(
        session,
        None,
        central,
        _hours({0: [("12:00", "21:00")], **{wd: daily for wd in range(1, 7)}}),
        at=at,
    )
    libraries.set_weekly_hours(
        session, None, airport, _hours({wd: [("06:00", "24:00")] for wd in range(7)}), at=at
    )
    libraries.set_weekly_hours(
        session,
        None,
        community,
        _hours(
            {
                **{wd: [("09:00", "12:00"), ("13:30", "18:00")] for wd in range(1, 6)},
                5: [("09:00", "17:00")],
                6: [("10:00", "16:00")],
            }
        ),
        at=at,
    )
    for day, en, zh in HOLIDAYS:
        for unit in (central, community):  # the airport branch keeps airport hours
            libraries.add_closed_day(session, None, unit, day, reason_en=en, reason_zh=zh, at=at)

    L = libraries.LocationInput
    for unit, locs in (
        (
            central,
            [
                L(
                    "1F-LOBBY",
                    1,
                    "A",
                    "New arrivals and self-service",
                    "新书与自助服务区",
                    "A01",
                    "A04",
                ),
                L("1F-CHILD", 1, "B", "Children's library", "少儿阅览区", "C01", "C12"),
                L(
                    "1F-LIT",
                    1,
                    "C",
                    "Chinese literature (I)",
                    "中国文学（I类）",
                    "L01",
                    "L20",
                ),
                L(
                    "2F-SCI",
                    2,
                    "D",
                    "Science and technology (N–X)",
                    "自然科学与技术（N–X类）",
                    "S01",
                    "S24",
                ),
                L(
                    "2F-SOC",
                    2,
                    "E",
                    "Social sciences (C–K)",
                    "社会科学（C–K类）",
                    "H01",
                    "H18",
                ),
                L(
                    "2F-RARE",
                    2,
                    "F",
                    "Ancient books reading room",
                    "古籍阅览室",
                    "R01",
                    "R06",
                ),
            ],
        ),
        (
            airport,
            [
                L(
                    "1F-TRAVEL",
                    1,
                    "A",
                    "Travel and city guides",
                    "旅行与城市指南",
                    "T01",
                    "T06",
                ),
                L("1F-POP", 1, "B", "Popular reading", "大众阅读", "P01", "P08"),
            ],
        ),
        (
            community,
            [
                L("1F-FAMILY", 1, "A", "Family and children", "亲子阅读区", "F01", "F08"),
                L("1F-GEN", 1, "B", "General collection", "综合藏书", "G01", "G16"),
            ],
        ),
    ):
        for loc in locs:
            libraries.add_location(session, None, unit, loc, at=at)

    staff_specs = [
        ("admin", "Consortium Administrator", central.id, [(Role.ADMIN, consortium.id)]),
        ("librarian", "Chen Jing 陈静", central.id, [(Role.LIBRARIAN, central.id)]),
        ("airport-librarian", "Li Wei 李伟", airport.id, [(Role.LIBRARIAN, airport.id)]),
        ("community-librarian", "Wang Fang 王芳", community.id, [(Role.LIBRARIAN, community.id)]),
        ("cataloguer", "Zhao Min 赵敏", central.id, [(Role.CATALOGUER, central.id)]),
        ("circulation", "Liu Yang 刘洋", central.id, [(Role.CIRCULATION, central.id)]),
        ("airport-desk", "Sun Lei 孙磊", airport.id, [(Role.CIRCULATION, airport.id)]),
    ]
    for code, (unit, name, where, kind) in enumerate(
        [
            (central, "Central entrance kiosk", "Ground floor, by the entrance", "kiosk"),
            (central, "Central return sorter", "Book return wall", "sorter"),
            (airport, "Airport kiosk", "Departures hall, gate C", "kiosk"),
        ]
    ):
        sip2.create_sip2_account(
            session,
            None,
            sip2.Sip2AccountInput(
                name=name,
                login=KIOSK_LOGINS[code],
                password=KIOSK_PASSWORD,
                org_unit_id=unit.id,
                kind=kind,
                location=where,
                locale="zh_Hans",
            ),
            at=at,
        )
    for username, name, home, roles in staff_specs:
        accounts.create_staff(
            session,
            None,
            username=username,
            full_name=name,
            password=STAFF_PASSWORD,
            home_org_unit_id=home,
            roles=roles,
            at=at,
        )

    # One hash for every demo reader: hashing 500 times would only slow the demo down.
    password_hash = hash_secret(READER_PASSWORD)
    pin_hash = hash_secret(READER_PIN)
    today = readers.local_today(at)
    homes = [central.id] * 5 + [community.id] * 3 + [airport.id] * 2
    rows: list[readers.Reader] = []
    for n in range(1, readers_count + 1):
        category = rng.choices(
            ["adult", "student", "child", "visitor", "staff"], weights=[55, 20, 15, 5, 5]
        )[0]
        age = {
            "adult": rng.randint(18, 85),
            "student": rng.randint(12, 26),
            "child": rng.randint(6, 13),
            "visitor": rng.randint(18, 70),
            "staff": rng.randint(22, 60),
        }[category]
        birth = today - dt.timedelta(days=age * 365 + rng.randint(1, 360))
        status = rng.choices(["active", "pending", "blocked", "expired"], weights=[85, 7, 3, 5])[0]
        if n == 1:
            category, birth, status = "adult", dt.date(1990, 5, 17), "active"
        # Online sign-ups wait days, not years, for a desk to check them.
        age_days = rng.randint(1, 20) if status == "pending" else rng.randint(1, 1500)
        created = at - dt.timedelta(days=age_days)
        expires = readers.rules.expiry_for(readers.Category(category), created.date())
        if status == "active" and expires < today:
            expires = readers.rules.expiry_for(readers.Category(category), today)
        if status == "expired":
            expires = today - dt.timedelta(days=rng.randint(1, 200))
        name = "林小雨" if n == 1 else _name(rng)
        rows.append(
            readers.Reader(
                card_number=demo_card(n),
                name=name,
                email=f"reader{n}@example.org",
                phone=f"+86 138 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                birth_date=birth,
                guardian_name=(_name(rng) if category == "child" else None),
                home_library_id=central.id if n == 1 else rng.choice(homes),
                category=category,
                status=status,
                expires_on=expires,
                password_hash=password_hash,
                pin_hash=pin_hash,
                registered_via="online" if status == "pending" else "desk",
                keep_history=rng.random() < 0.3,
                preferred_locale="zh_Hans" if rng.random() < 0.7 else "en",
                blocked_reason="Overdue items" if status == "blocked" else None,
                created_at=created,
                activated_at=None if status == "pending" else created,
            )
        )
    session.add_all(rows)
    session.flush()
    seed_catalogue(session, at=at, rng=rng)
    seed_rules(session, at=at, consortium_id=consortium.id, airport_id=airport.id)
    seed_circulation(session, at=at, rng=rng)
    seed_smart_building(session, at=at)
    seed_floor_plans(session, at=at)


# --- smart shelves and the building ---------------------------------------------------------

SMART_SHELVES = 12  # in the central library's social sciences room, 2F-SOC
COPIES_PER_SHELF = 120


def _cut(keyed: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """A run of (shelf key, call number) cut into ``count`` ranges, never between two copies
    of one call number."""
    size = max(1, len(keyed) // count)
    cuts: list[tuple[str, str]] = []
    start = 0
    while start < len(keyed) and len(cuts) < count:
        end = len(keyed) - 1 if len(cuts) == count - 1 else min(start + size, len(keyed)) - 1
        while end + 1 < len(keyed) and keyed[end + 1][0].startswith(keyed[end][0]):
            end += 1
        cuts.append((keyed[start][1], keyed[end][1]))
        start = end + 1
    return cuts


def _runs(session: Session, unit_id: int) -> dict[int, list[list[tuple[str, str]]]]:
    """Each room's copies (shelf key, call number) in shelf order, cut wherever another
    room's copies come between: a shelf's range must never take in another room's books."""
    rows = session.execute(
        select(catalog.Item.shelf_key, catalog.Item.call_number, catalog.Item.location_id)
        .where(catalog.Item.org_unit_id == unit_id, catalog.Item.shelf_key.like("L|%"))
        .order_by(catalog.Item.shelf_key)
    )
    runs: dict[int, list[list[tuple[str, str]]]] = {}
    last = None
    for key, call, loc in rows:
        if key is None or call is None or loc is None:
            continue
        if loc != last:
            runs.setdefault(loc, []).append([])
            last = loc
        runs[loc][-1].append((key, call))
    return runs


def seed_shelves(session: Session, *, at: dt.datetime) -> list[libraries.Shelf]:
    """Shelves for every room that holds copies, their call-number ranges cut from the
    copies standing there; twelve single-sided smart shelves in the central library's 2F-SOC,
    double-sided bookcases elsewhere."""
    made: list[libraries.Shelf] = []
    for unit_code, rooms in ROOMS.items():
        unit = libraries.get_unit_by_code(session, unit_code)
        locs = {loc.code: loc for loc in libraries.locations_of(session, unit.id)}
        runs = _runs(session, unit.id)
        for room, _ in rooms:
            loc = locs[room]
            pieces = runs.get(loc.id, [])
            total = sum(len(p) for p in pieces)
            smart = unit_code == "central" and room == "2F-SOC"
            count = SMART_SHELVES if smart else min(12, max(2, -(-total // COPIES_PER_SHELF)))
            # shelves per run of the classification, in proportion, at least one each
            shares = [max(1, round(count * len(p) / max(total, 1))) for p in pieces]
            while sum(shares) > max(count, len(pieces)):
                shares[shares.index(max(shares))] -= 1
            while sum(shares) < count and shares:
                shares[shares.index(max(shares))] += 1
            n = 0
            for piece, share in zip(pieces, shares, strict=True):
                for first, last in _cut(piece, share):
                    n += 1
                    made.append(
                        libraries.add_shelf(
                            session,
                            None,
                            unit,
                            libraries.ShelfInput(
                                loc.id,
                                f"{SHELF_PREFIX[room]}{n:02d}",
                                first,
                                last,
                                "lcc",
                                levels=6,
                                sides=1 if smart else 2,
                            ),
                            at=at,
                        )
                    )
    return made


def seed_smart_building(session: Session, *, at: dt.datetime) -> None:
    """Smart shelves in the central library, their call-number ranges cut from the copies
    that stand there; a shelf reader with an antenna per shelf; a gate; sensors in the
    ancient books room, the children's library, the lobby and the reading room; their
    ranges; and linkage rules. `biblioverse rfid simulate` brings them to life."""
    from biblioverse.building import service as building

    central = libraries.get_unit_by_code(session, "central")
    locs = {loc.code: loc for loc in libraries.locations_of(session, central.id)}
    shelves = seed_shelves(session, at=at)
    reader, _ = accounts.create_device_key(
        session, None, name="Shelf reader 2F-SOC", kind="shelf", org_unit_id=central.id, at=at
    )
    for n, shelf in enumerate((s for s in shelves if s.location_id == locs["2F-SOC"].id), 1):
        smart_shelves.add_antenna(
            session, None, device_id=reader.id, antenna=n, shelf_id=shelf.id, level=3, at=at
        )
    accounts.create_device_key(
        session, None, name="Entrance gate", kind="gate", org_unit_id=central.id, at=at
    )
    sensors = [
        ("Climate, ancient books room", "2F-RARE"),
        ("Air quality, children's library", "1F-CHILD"),
        ("People counter, lobby", "1F-LOBBY"),
        ("Seat sensors, social sciences", "2F-SOC"),
    ]
    system = _system_admin(central)
    for name, code in sensors:
        device, _ = accounts.create_device_key(
            session, None, name=name, kind="sensor", org_unit_id=central.id, at=at
        )
        building.place_sensor(
            session, system, device_id=device.id, location_id=locs[code].id, at=at
        )
    for code, metric, low, high in (
        ("2F-RARE", "temperature", 18.0, 22.0),
        ("2F-RARE", "humidity", 45.0, 55.0),
        ("1F-CHILD", "co2", None, 1000.0),
        ("1F-CHILD", "noise", None, 65.0),
        ("1F-LOBBY", "people", None, 400.0),
    ):
        building.set_threshold(
            session, system, location_id=locs[code].id, metric=metric, low=low, high=high, at=at
        )
    dryer, _ = accounts.create_device_key(
        session,
        None,
        name="Dehumidifier, ancient books room",
        kind="robot",
        org_unit_id=central.id,
        at=at,
    )
    building.add_rule(
        session,
        system,
        central.id,
        building.RuleInput(name="Tell the staff", actions=[{"type": "notify"}]),
        at=at,
    )
    building.add_rule(
        session,
        system,
        central.id,
        building.RuleInput(
            name="Dry the ancient books room",
            metric="humidity",
            location_id=locs["2F-RARE"].id,
            actions=[
                {"type": "mqtt", "device_id": dryer.id, "command": "dehumidify", "args": {"to": 50}}
            ],
        ),
        at=at,
    )


def _system_admin(unit: libraries.OrgUnit):  # type: ignore[no-untyped-def]
    """The seeding's own authority over a library (audited as the system)."""
    from biblioverse.access import Actor, Grant, PrincipalKind

    return Actor(PrincipalKind.STAFF, 0, "system", grants=(Grant(Role.ADMIN, unit.path, unit.id),))


ZONE_KINDS = {
    "1F-LOBBY": "self_service",
    "1F-CHILD": "children",
    "1F-LIT": "reading_room",
    "2F-SCI": "study",
    "2F-SOC": "stacks",
    "2F-RARE": "ancient_books",
    "1F-TRAVEL": "reading_room",
    "1F-POP": "stacks",
    "1F-FAMILY": "children",
    "1F-GEN": "stacks",
}
ZONE_SEATS = {"1F-LOBBY": 4, "1F-LIT": 8, "2F-SCI": 8, "1F-TRAVEL": 8, "1F-FAMILY": 4}
# Floors are named as the record page names them (Floor 1 is where you come in): "ground"
# and "first" floor mean different floors in British and American English.
FLOOR_NAMES = {1: ("Floor 1", "1 层"), 2: ("Floor 2", "2 层")}


def seed_floor_plans(session: Session, *, at: dt.datetime) -> None:
    """A plan for every branch, drafted from its rooms and their shelves (`twin.layout`):
    rooms side by side off a corridor, a lift and stairs where there are two floors, and a
    lecture hall on the central library's first floor."""
    from biblioverse import twin
    from biblioverse.twin import layout

    for unit_code in ROOMS:
        unit = libraries.get_unit_by_code(session, unit_code)
        shelves: dict[int, list[layout.ShelfSpec]] = {}
        for s in libraries.shelves_of(session, unit.id):
            shelves.setdefault(s.location_id, []).append(
                layout.ShelfSpec(s.code, s.scheme, s.first_call, s.last_call, s.levels, s.sides)
            )
        floors: dict[int, list[layout.ZoneSpec]] = {}
        for loc in libraries.locations_of(session, unit.id):
            floors.setdefault(loc.floor, []).append(
                layout.ZoneSpec(
                    loc.code,
                    ZONE_KINDS.get(loc.code, "other"),
                    loc.name_en,
                    loc.name_zh,
                    shelves.get(loc.id, []),
                    seats=ZONE_SEATS.get(loc.code, 0),
                    columns=3,
                )
            )
        if unit_code == "central":
            floors.setdefault(2, []).append(
                layout.ZoneSpec("2F-HALL", "lecture", "Lecture hall", "报告厅", seats=8)
            )
        specs = [
            layout.FloorSpec(lv, *FLOOR_NAMES.get(lv, (f"Floor {lv}", f"{lv} 层")), zones)
            for lv, zones in sorted(floors.items())
        ]
        twin.import_plan(session, _system_admin(unit), unit, layout.draft(specs), at=at)
