"""A small union for settlement-path tests: an organization tree, one employer, members, viewers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

import asyncpg

from domain.national_id import check_digit
from schema import scopes
from sources.viewer import Viewer


def national_id(serial: int, *, born: date = date(1988, 5, 17), female: bool = True) -> str:
    """A valid GB 11643 id; the sequence digit's parity carries the gender."""
    seq = (serial * 2 + (0 if female else 1)) % 1000
    first17 = f"320211{born:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    gender: str
    national_id: str
    organization_id: str


WANG = Person("m-wang", "王丽", "FEMALE", national_id(1), "g1")
LI = Person("m-li", "李强", "MALE", national_id(2, female=False), "g1")
ZHAO = Person("m-zhao", "赵敏", "FEMALE", national_id(3), "d2")

ALL_SCOPES = frozenset(scopes.ALL_SCOPES)


async def create_union(conn: asyncpg.Connection, people: Iterable[Person] = (WANG, LI, ZHAO)) -> None:
    """city ─ d1 ─ g1, city ─ d2; one employer; the given members."""
    await conn.execute(
        "INSERT INTO members.organizations (id, name, level, parent_id) VALUES"
        " ('city', '无锡市总工会', 'CITY', NULL), ('d1', '梁溪区总工会', 'DISTRICT', 'city'),"
        " ('g1', '实验幼儿园工会', 'GRASSROOTS', 'd1'), ('d2', '滨湖区总工会', 'DISTRICT', 'city')"
    )
    await conn.execute("SELECT members.refresh_organization_paths()")
    await conn.execute(
        "INSERT INTO members.employers (id, name, credit_code, industry, organization_id)"
        " VALUES ('e1', '无锡市实验幼儿园', '12320200466286830X', '教育', 'g1')"
    )
    await add_members(conn, people)


async def add_members(conn: asyncpg.Connection, people: Iterable[Person]) -> None:
    await conn.executemany(
        "INSERT INTO members.members (id, name, gender, birth_date, national_id, phone, employment_type,"
        " employer_id, organization_id, joined_on) VALUES ($1, $2, $3, '1988-05-17', $4, '13900000000',"
        " 'REGULAR', 'e1', $5, '2015-09-01')",
        [(p.id, p.name, p.gender, p.national_id, p.organization_id) for p in people],
    )


def viewer(organization_id: str = "city", path: str | None = None, scopes_: Iterable[str] = ALL_SCOPES) -> Viewer:
    paths = {"city": "/city/", "d1": "/city/d1/", "g1": "/city/d1/g1/", "d2": "/city/d2/"}
    return Viewer(key_id=f"k-{organization_id}", name=f"test key of {organization_id}", scopes=frozenset(scopes_),
                  organization_id=organization_id, organization_path=path or paths[organization_id])


def insured(person: Person, since: str = "2010-01-01") -> dict[str, Any]:
    return {"national_id": person.national_id, "insured": True, "scheme": "城镇职工基本医疗保险", "since": since}
