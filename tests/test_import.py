"""`union-gateway import`: every kind, every bad row reported, all or nothing, re-import, the tree's paths."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from commands.importer import ImportRejected, import_file
from domain.national_id import check_digit
from gateway import cli

ORGANIZATIONS = [
    # A child before its parent: a parent may come later in the same file.
    ("lx-1", "梁溪区崇安寺街道工会", "GRASSROOTS", "lx"),
    ("wx", "无锡市总工会", "CITY", ""),
    ("lx", "梁溪区总工会", "DISTRICT", "wx"),
    ("bh", "滨湖区总工会", "DISTRICT", "wx"),
    ("lx-2", "梁溪区江海街道工会", "GRASSROOTS", "lx"),
    ("bh-1", "滨湖区蠡园开发区工会", "GRASSROOTS", "bh"),
    ("direct", "市直属机关工会", "GRASSROOTS", "wx"),
]
EMPLOYERS = [
    ("e1", "无锡小天鹅电器有限公司", "91320200135916783B", "制造业", "lx-1"),
    ("e2", "红豆集团有限公司", "913202001360007834", "", "bh"),
]
CONTRACT_HEADER = ("id,title,kind,status,employer_id,organization_id,campaign,effective_from,effective_to,"
                   "covered_workers,wage_increase_percent,signed_on")
MEMBER_HEADER = "id,name,gender,birth_date,national_id,phone,employment_type,employer_id,organization_id,joined_on"


def national_id(born: date, seq: int = 123, area: str = "320202") -> str:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


def with_wrong_check_digit(value: str) -> str:
    return value[:17] + ("0" if value[17] != "0" else "1")


def member(id: str, name: str, born: date, *, seq: int = 123, employer: str = "e1", org: str = "lx-1",
           gender: str = "FEMALE", joined: str = "2015-03-01") -> str:
    return f"{id},{name},{gender},{born},{national_id(born, seq)},13912345678,REGULAR,{employer},{org},{joined}"


def write(path: Path, header: str, lines: list[str], *, bom: bool = False) -> Path:
    text = "\n".join([header, *lines]) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def rows(*values: tuple[str, ...]) -> list[str]:
    return [",".join(v) for v in values]


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def rejected(urls: dict[str, str], kind: str, path: Path) -> list[str]:
    with pytest.raises(ImportRejected) as info:
        await import_file(urls, kind=kind, path=path)
    return info.value.lines()


async def load_base(urls: dict[str, str], tmp_path: Path) -> None:
    """The organization tree, two employers and two members."""
    await import_file(urls, kind="organizations", path=write(tmp_path / "orgs.csv", "id,name,level,parent_id",
                                                             rows(*ORGANIZATIONS)))
    await import_file(urls, kind="employers", path=write(tmp_path / "employers.csv",
                                                         "id,name,credit_code,industry,organization_id",
                                                         rows(*EMPLOYERS)))
    await import_file(urls, kind="members", path=write(tmp_path / "members.csv", MEMBER_HEADER, [
        member("m1", "张秀英", date(1990, 5, 17)),
        member("m2", "李建国", date(1985, 11, 2), seq=351, employer="e2", org="bh-1", gender="MALE"),
    ]))


async def test_good_files_of_every_kind(urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    await load_base(urls, tmp_path)
    contracts = await import_file(urls, kind="contracts", path=write(tmp_path / "contracts.csv", CONTRACT_HEADER, [
        "c1,小天鹅2024年工资专项集体合同,WAGE,SIGNED,e1,lx-1,2024春季要约行动,2024-01-01,2026-12-31,1200,5.50,2024-03-15",
        "c2,红豆集团女职工权益保护专项集体合同,FEMALE_PROTECTION,OFFERED,e2,bh,,,,800,,",
    ]))
    events = await import_file(urls, kind="events", path=write(tmp_path / "events.csv",
                                                               "id,title,format,organizer_id,starts_at", [
        "ev1,2024春风行动梁溪专场,ONSITE,lx,2024-02-18T09:00:00",
        "ev2,直播带岗,LIVESTREAM,wx,2024-03-01T19:30:00+00:00",
    ]))
    postings = await import_file(urls, kind="postings", path=write(
        tmp_path / "postings.csv", "id,event_id,employer_id,title,sector,headcount,salary_min,salary_max", [
            "p1,ev1,e1,装配工,制造业,30,5500,7000.50",
            "p2,,e2,纺织挡车工,纺织业,10,,",
        ]))

    assert (contracts.inserted, events.inserted, postings.inserted) == (2, 2, 2)
    orgs = await fetch(database_url, "SELECT id, name, path FROM members.organizations ORDER BY id")
    assert {r["id"]: r["path"] for r in orgs}["lx-1"] == "/wx/lx/lx-1/"
    assert {r["id"]: r["name"] for r in orgs}["lx-1"] == "梁溪区崇安寺街道工会"
    [m1] = await fetch(database_url, "SELECT * FROM members.members WHERE id = 'm1'")
    assert (m1["name"], m1["birth_date"], m1["national_id"]) == ("张秀英", date(1990, 5, 17),
                                                                  national_id(date(1990, 5, 17)))
    [e2] = await fetch(database_url, "SELECT industry, organization_id FROM members.employers WHERE id = 'e2'")
    assert (e2["industry"], e2["organization_id"]) == (None, "bh")
    [c1, c2] = await fetch(database_url, "SELECT * FROM contracts.contracts ORDER BY id")
    assert (c1["title"], c1["campaign"], c1["wage_increase_percent"], c1["effective_to"]) == (
        "小天鹅2024年工资专项集体合同", "2024春季要约行动", Decimal("5.50"), date(2026, 12, 31))
    assert (c2["campaign"], c2["effective_from"], c2["wage_increase_percent"], c2["covered_workers"]) == (
        None, None, None, 800)
    starts = {r["id"]: r["starts_at"] for r in await fetch(database_url, "SELECT id, starts_at FROM recruitment.events")}
    assert starts["ev1"] == datetime(2024, 2, 18, 1, 0, tzinfo=timezone.utc)  # no offset: Asia/Shanghai
    assert starts["ev2"] == datetime(2024, 3, 1, 19, 30, tzinfo=timezone.utc)
    [p1, p2] = await fetch(database_url, "SELECT * FROM recruitment.postings ORDER BY id")
    assert (p1["salary_min"], p1["salary_max"], p1["headcount"]) == (Decimal("5500.00"), Decimal("7000.50"), 30)
    assert (p2["event_id"], p2["salary_min"]) == (None, None)
    assert [tuple(r) for r in await fetch(database_url, "SELECT * FROM recruitment.event_employers")] == [("ev1", "e1")]


async def test_bom_file_is_read_like_any_other(urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "orgs.csv", "id,name,level,parent_id", rows(*ORGANIZATIONS), bom=True)
    summary = await import_file(urls, kind="organizations", path=path)
    assert summary.inserted == len(ORGANIZATIONS)
    [city] = await fetch(database_url, "SELECT id, name FROM members.organizations WHERE level = 'CITY'")
    assert (city["id"], city["name"]) == ("wx", "无锡市总工会")


async def test_reimport_updates_rows_by_id(urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    await load_base(urls, tmp_path)
    summary = await import_file(urls, kind="members", path=write(tmp_path / "again.csv", MEMBER_HEADER, [
        member("m1", "张秀英（已改名）", date(1990, 5, 17), employer="e2", org="bh-1"),
        member("m3", "王芳", date(1995, 1, 9), seq=882),
    ]))
    assert (summary.inserted, summary.updated) == (1, 1)
    got = {r["id"]: (r["name"], r["employer_id"], r["organization_id"])
           for r in await fetch(database_url, "SELECT * FROM members.members")}
    assert got == {"m1": ("张秀英（已改名）", "e2", "bh-1"), "m2": ("李建国", "e2", "bh-1"), "m3": ("王芳", "e1", "lx-1")}
    await assert_member_counters_right(database_url)  # an upsert both moves and adds members


COUNTED_TWICE = """
    SELECT o.id, coalesce(c.members, 0) AS members, coalesce(c.subtree_members, 0) AS subtree,
           (SELECT count(*) FROM members.members m WHERE m.organization_id = o.id) AS members_by_rows,
           (SELECT count(*) FROM members.members m JOIN members.organizations x ON x.id = m.organization_id
            WHERE x.path LIKE o.path || '%') AS subtree_by_rows
    FROM members.organizations o LEFT JOIN members.organization_member_counts c ON c.organization_id = o.id"""


async def assert_member_counters_right(url: str) -> None:
    """members.organization_member_counts agrees with counting the rows, for every organization."""
    for r in await fetch(url, COUNTED_TWICE):
        assert (r["members"], r["subtree"]) == (r["members_by_rows"], r["subtree_by_rows"]), r["id"]


SUBTREE = "SELECT id FROM members.organizations WHERE path LIKE (SELECT path FROM members.organizations WHERE id = $1) || '%' ORDER BY id"
IS_UNDER = ("SELECT x.path LIKE y.path || '%' FROM members.organizations x, members.organizations y"
            " WHERE x.id = $1 AND y.id = $2")


async def test_paths_answer_subtree_questions_and_follow_reparenting(
        urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    await load_base(urls, tmp_path)

    async def subtree(org: str) -> list[str]:
        return [r["id"] for r in await fetch(database_url, SUBTREE, org)]

    async def is_under(x: str, y: str) -> bool:
        return (await fetch(database_url, IS_UNDER, x, y))[0][0]

    assert await subtree("wx") == sorted(o[0] for o in ORGANIZATIONS)
    assert await subtree("lx") == ["lx", "lx-1", "lx-2"]
    assert await subtree("lx-1") == ["lx-1"]
    assert await is_under("lx-2", "lx") and await is_under("lx-2", "wx") and await is_under("lx", "lx")
    assert not await is_under("bh-1", "lx") and not await is_under("lx", "lx-1")

    # A new district takes over lx-2 (re-parented in the same file as the district is created)...
    await import_file(urls, kind="organizations", path=write(tmp_path / "more.csv", "id,name,level,parent_id", [
        "lx-2,梁溪区江海街道工会,GRASSROOTS,xw", "xw,新吴区总工会,DISTRICT,wx"]))
    assert await subtree("lx") == ["lx", "lx-1"]
    assert await subtree("xw") == ["lx-2", "xw"]
    # A district's only possible parent is the CITY, so it can only move with its grassroots by being
    # re-levelled, which the tree rules refuse while it holds them: nothing moves.
    move = write(tmp_path / "move.csv", "id,name,level,parent_id", ["bh,滨湖区总工会,GRASSROOTS,lx"])
    assert await rejected(urls, "organizations", move) == [
        f"{move}:2: level: a GRASSROOTS cannot hold its 1 stored child organization(s), e.g. 'bh-1' (GRASSROOTS)"]
    assert await subtree("bh") == ["bh", "bh-1"]
    # Grassroots move between districts, and to and from directly under the CITY.
    await import_file(urls, kind="organizations", path=write(tmp_path / "back.csv", "id,name,level,parent_id", [
        "bh-1,滨湖区蠡园开发区工会,GRASSROOTS,xw", "direct,市直属机关工会,GRASSROOTS,bh", "lx-1,梁溪区崇安寺街道工会,GRASSROOTS,wx"]))
    assert await subtree("bh") == ["bh", "direct"]
    assert await subtree("xw") == ["bh-1", "lx-2", "xw"]
    assert await subtree("lx") == ["lx"]
    assert not await is_under("lx-1", "lx") and await is_under("lx-1", "wx")
    paths = {r["id"]: r["path"] for r in await fetch(database_url, "SELECT id, path FROM members.organizations")}
    assert paths["bh-1"] == "/wx/xw/bh-1/"
    await assert_member_counters_right(database_url)  # moved organizations took their members along


async def snapshot(url: str) -> dict[str, list[tuple]]:
    tables = ("members.organizations", "members.employers", "members.members", "contracts.contracts",
              "recruitment.events", "recruitment.postings", "recruitment.event_employers")
    return {t: [tuple(r) for r in await fetch(url, f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}


async def test_bad_organizations_are_all_reported(urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    await load_base(urls, tmp_path)
    before = await snapshot(database_url)
    path = write(tmp_path / "orgs.csv", "id,name,level,parent_id", [
        "ok,好的街道工会,GRASSROOTS,bh",  # 2: fine
        "a,某工会,TOWN,wx",  # 3
        "b,某工会,GRASSROOTS,nowhere",  # 4
        "c,某区工会,DISTRICT,lx",  # 5
        "d,某工会,GRASSROOTS,lx-1",  # 6
        "wx2,另一个市总工会,CITY,",  # 7
        "e,某工会,DISTRICT,",  # 8
        "ok,重复,GRASSROOTS,lx",  # 9
        "f,某工会,GRASSROOTS",  # 10
        "g/h,某工会,GRASSROOTS,lx",  # 11
        "x1,某工会,DISTRICT,x2",  # 12: x1 and x2 form a cycle
        "x2,某工会,DISTRICT,x1",  # 13
        "lx,梁溪区总工会,GRASSROOTS,wx",  # 14: lx's stored grassroots cannot stay under a GRASSROOTS
        ",无名,GRASSROOTS,lx",  # 15
    ])
    f = str(path)
    assert await rejected(urls, "organizations", path) == [
        f"{f}:3: level: 'TOWN' is not one of CITY, DISTRICT, GRASSROOTS",
        f"{f}:4: parent_id: unknown organization 'nowhere' (not in the database or this file)",
        f"{f}:5: parent_id: a DISTRICT must be under the CITY; 'lx' is a GRASSROOTS",
        f"{f}:6: parent_id: a GRASSROOTS must be under a DISTRICT or the CITY; 'lx-1' is a GRASSROOTS",
        f"{f}:7: level: there is exactly one CITY, and it is 'wx'",
        f"{f}:8: parent_id: required for a DISTRICT",
        f"{f}:9: id: duplicate of line 2",
        f"{f}:10: parent_id: has 3 values, the header has 4 columns",
        f"{f}:11: id: must not contain '/'",
        f"{f}:12: parent_id: a DISTRICT must be under the CITY; 'x2' is a DISTRICT",
        f"{f}:12: parent_id: cycle: x1 → x2 → x1",
        f"{f}:13: parent_id: a DISTRICT must be under the CITY; 'x1' is a DISTRICT",
        f"{f}:13: parent_id: cycle: x2 → x1 → x2",
        f"{f}:14: level: a GRASSROOTS cannot hold its 2 stored child organization(s), e.g. 'lx-1' (GRASSROOTS)",
        f"{f}:15: id: required",
    ]
    assert await snapshot(database_url) == before


async def test_bad_members_are_all_reported_by_the_cli(urls: dict[str, str], database_url: str,
                                                       tmp_path: Path) -> None:
    await load_base(urls, tmp_path)
    before = await snapshot(database_url)
    born = date(1992, 8, 30)
    good = national_id(born, 401)
    lines = [
        member("n1", "赵敏", born, seq=401),  # 2: fine
        member("n2", "钱", date(1980, 1, 1), gender="F"),  # 3
        f"n3,孙,MALE,1980-01-01,{with_wrong_check_digit(national_id(date(1980, 1, 1), 7))},,REGULAR,e1,lx-1,2015-03-01",
        f"n4,李,MALE,1980-02-30,32020219800230007X,,REGULAR,e1,lx-1,2015-03-01",  # 5: no such birth date
        f"n5,周,MALE,1981-01-01,{national_id(date(1980, 1, 1), 9)},,REGULAR,e1,lx-1,2015-03-01",  # 6
        member("n6", "吴", date(1980, 1, 2), joined="2015/03/01"),  # 7
        member("n7", "郑", date(1980, 1, 3), employer="nope", org="gone"),  # 8
        member("n1", "王", date(1980, 1, 4)),  # 9
        f"n8,冯,FEMALE,{born},{good},,REGULAR,e1,lx-1,2015-03-01",  # 10: national_id of line 2
        member("n9", "陈", date(1990, 5, 17)),  # 11: m1's national_id
        "n10,褚,FEMALE,1980-01-01",  # 12
        member("n11", "卫", date(1980, 1, 5)).replace("REGULAR", "TEMP"),  # 13
        member("n12", "", date(1980, 1, 6)),  # 14
    ]
    path = write(tmp_path / "members.csv", MEMBER_HEADER, lines)
    # 15: a name in GBK, not UTF-8
    path.write_bytes(path.read_bytes() + member("n13", "蒋", date(1980, 1, 7)).encode("gbk") + b"\n")

    result = subprocess.run(
        [str(Path(sys.executable).parent / "union-gateway"), "import", "members", str(path)],
        env={**os.environ, "UNION_GATEWAY_DATABASE_URL": database_url}, capture_output=True, text=True,
        timeout=120, cwd=tmp_path,
    )
    f = str(path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"{f}:3: gender: 'F' is not one of FEMALE, MALE",
        f"{f}:4: national_id: check digit is {with_wrong_check_digit(national_id(date(1980, 1, 1), 7))[17]}, "
        f"expected {national_id(date(1980, 1, 1), 7)[17]}",
        f"{f}:5: birth_date: '1980-02-30' is not a date",
        f"{f}:5: national_id: birth date 19800230 is not a date",
        f"{f}:6: birth_date: 1981-01-01 differs from the birth date in national_id",
        f"{f}:7: joined_on: '2015/03/01' is not a date (YYYY-MM-DD)",
        f"{f}:8: employer_id: unknown employer 'nope'",
        f"{f}:8: organization_id: unknown organization 'gone'",
        f"{f}:9: id: duplicate of line 2",
        f"{f}:10: national_id: duplicate of line 2",
        f"{f}:11: national_id: already used by 'm1'",
        f"{f}:12: national_id: has 4 values, the header has 10 columns",
        f"{f}:13: employment_type: 'TEMP' is not one of REGULAR, DISPATCHED",
        f"{f}:14: name: required",
        f"{f}:15: name: invalid UTF-8",
    ]
    assert await snapshot(database_url) == before


async def test_bad_contracts_events_postings_employers_are_all_reported(
        urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    await load_base(urls, tmp_path)
    await import_file(urls, kind="events", path=write(tmp_path / "ev.csv", "id,title,format,organizer_id,starts_at",
                                                      ["ev1,春风行动,ONSITE,lx,2024-02-18T09:00:00+08:00"]))
    before = await snapshot(database_url)

    contracts = write(tmp_path / "contracts.csv", CONTRACT_HEADER, [
        "c1,合同,WAGE,SIGNED,e1,lx-1,,2024-01-01,2026-12-31,100,3,2024-01-01",  # 2: fine
        "c2,合同,SALARY,DONE,nope,gone,,2024-13-01,,-5,abc,",  # 3
        "c3,合同,WAGE,FILED,e1,lx,,2024-06-01,2024-01-01,1.5,1e3,",  # 4
    ])
    f = str(contracts)
    assert await rejected(urls, "contracts", contracts) == [
        f"{f}:3: kind: 'SALARY' is not one of COMPREHENSIVE, WAGE, LABOR_SAFETY, FEMALE_PROTECTION, "
        "OCCUPATIONAL_HEALTH, TECH_INNOVATION, SKILL_LEVEL_WAGE",
        f"{f}:3: status: 'DONE' is not one of OFFERED, NEGOTIATING, SIGNED, FILED, EXPIRED",
        f"{f}:3: employer_id: unknown employer 'nope' (not in the members source)",
        f"{f}:3: organization_id: unknown organization 'gone' (not in the members source)",
        f"{f}:3: effective_from: '2024-13-01' is not a date",
        f"{f}:3: covered_workers: -5 is negative",
        f"{f}:3: wage_increase_percent: 'abc' is not a number",
        f"{f}:4: effective_to: 2024-01-01 is before effective_from 2024-06-01",
        f"{f}:4: covered_workers: '1.5' is not a whole number",
        f"{f}:4: wage_increase_percent: '1e3' must be between -999.99 and 999.99 with at most 2 decimals",
    ]

    events = write(tmp_path / "events.csv", "id,title,format,organizer_id,starts_at", [
        "ev2,直播,LIVE,nowhere,2024-02-30T09:00:00",  # 2
        "ev3,招聘会,ONSITE,lx,2024-02-18",  # 3
    ])
    f = str(events)
    assert await rejected(urls, "events", events) == [
        f"{f}:2: format: 'LIVE' is not one of ONSITE, LIVESTREAM",
        f"{f}:2: organizer_id: unknown organization 'nowhere' (not in the members source)",
        f"{f}:2: starts_at: '2024-02-30T09:00:00' is not an ISO 8601 date and time",
        f"{f}:3: starts_at: '2024-02-18' is not an ISO 8601 date and time (e.g. 2024-03-01T09:30:00+08:00)",
    ]

    postings = write(tmp_path / "postings.csv", "id,event_id,employer_id,title,sector,headcount,salary_min,salary_max", [
        "p1,ev1,e1,装配工,制造业,30,5500,7000",  # 2: fine
        "p2,ev9,e9,装配工,制造业,-1,五千,",  # 3
        "p3,,e2,质检员,制造业,3,8000,6000",  # 4
        "p1,ev1,e1,装配工,制造业,30,-10,",  # 5
    ])
    f = str(postings)
    assert await rejected(urls, "postings", postings) == [
        f"{f}:3: event_id: unknown event 'ev9'",
        f"{f}:3: employer_id: unknown employer 'e9' (not in the members source)",
        f"{f}:3: headcount: -1 is negative",
        f"{f}:3: salary_min: '五千' is not a number",
        f"{f}:4: salary_max: 6000 is less than salary_min 8000",
        f"{f}:5: id: duplicate of line 2",
        f"{f}:5: salary_min: -10 is negative",
    ]

    employers = write(tmp_path / "employers.csv", "id,name,credit_code,industry,organization_id", [
        "e3,某公司,123,,gone",  # 2
    ])
    f = str(employers)
    assert await rejected(urls, "employers", employers) == [
        f"{f}:2: credit_code: must be 18 digits or capital letters (统一社会信用代码)",
        f"{f}:2: organization_id: unknown organization 'gone'",
    ]
    assert await snapshot(database_url) == before


async def test_header_must_name_exactly_the_columns(urls: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path / "orgs.csv", "id,name,kind", ["wx,无锡市总工会,CITY"])
    f = str(path)
    assert await rejected(urls, "organizations", path) == [
        f"{f}:1: kind: unknown column; expected id,name,level,parent_id",
        f"{f}:1: level: missing column",
        f"{f}:1: parent_id: missing column",
    ]


async def test_lines_are_physical_lines_of_the_file(urls: dict[str, str], tmp_path: Path) -> None:
    # Excel writes CRLF and quotes cells with line breaks; a record may span lines.
    path = tmp_path / "orgs.csv"
    path.write_bytes("id,name,level,parent_id\r\nwx,\"无锡市\r\n总工会\",CITY,\r\n\r\nlx,梁溪区总工会,TOWN,wx\r\n".encode())
    assert await rejected(urls, "organizations", path) == [f"{path}:5: level: 'TOWN' is not one of CITY, DISTRICT, GRASSROOTS"]


def test_an_unknown_kind_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "id", ["1"])
    result = CliRunner().invoke(cli, ["import", "unions", str(path)])
    assert result.exit_code == 2
    assert "'unions' is not one of" in result.output and "postings" in result.output


async def test_bulk_members_import(urls: dict[str, str], database_url: str, tmp_path: Path) -> None:
    """Times a large import informally; UNION_GATEWAY_IMPORT_BENCH_MEMBERS=100000 for the full size."""
    await load_base(urls, tmp_path)
    size = int(os.environ.get("UNION_GATEWAY_IMPORT_BENCH_MEMBERS", "20000"))
    first = date(1960, 1, 1)
    lines = []
    for i in range(size):
        born = first + timedelta(days=i % 15000)
        org, employer = ("lx-1", "e1") if i % 2 else ("bh-1", "e2")
        lines.append(f"b{i},会员{i},{'FEMALE' if i % 3 else 'MALE'},{born},{national_id(born, 500 + i // 15000)},"
                     f"139{i:08d},REGULAR,{employer},{org},2020-01-01")
    path = write(tmp_path / "bulk.csv", MEMBER_HEADER, lines)

    started = time.perf_counter()
    summary = await import_file(urls, kind="members", path=path)
    print(f"\nimported {size} members in {time.perf_counter() - started:.2f} s")
    assert summary.inserted == size
    [count] = await fetch(database_url, "SELECT count(*) FROM members.members WHERE id LIKE 'b%'")
    assert count[0] == size
