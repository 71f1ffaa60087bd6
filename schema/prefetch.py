"""Look-ahead loading: a list's links are loaded level by level before its items resolve.

graphql-core completes a field synchronously when its resolver returns a
value, and through coroutines, futures and gathers when it returns an
awaitable; measured on the staff-list workload (W2) that was ~30 µs per
field against ~3 µs. So a link's resolver returns the loader's value at once
when the request already holds it (`ready`), and whoever resolves a list or
a root object first walks the query's selection (`prefetch`) and loads every
link it asks for: the same batched statements the loaders would run during
execution, one per link and level, only earlier. A link nobody prefetched
(a fragment on an interface we do not follow, `_entities`, a mutation's
result) still works: `ready` then hands graphql-core the loader's future.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aiodataloader import DataLoader
from graphql.pyutils import is_awaitable  # faster than inspect.isawaitable on the hot path
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from schema import scopes
from sources.bulk_load import MISSING, load_all, prefetched
from schema.pagination import decode_cursor, page_size
from schema.scalars import SHANGHAI

T = TypeVar("T")
R = TypeVar("R")


#: Links resolved late (not prefetched), by loader: each one sent its list down
#: graphql-core's slow asynchronous path. Tests assert the hot shapes keep it at 0.
late_loads: Counter[str] = Counter()


def ready(loader: DataLoader, key: Any) -> Any:
    """The loader's value for `key` now if this request has it, else an awaitable of it."""
    value = prefetched(loader, key)
    if value is not MISSING:
        return value
    # aiodataloader keeps one future per cache key; a done one is the value.
    future = loader._cache.get(loader.get_cache_key(key)) if loader.cache else None
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    late_loads[type(loader).__name__] += 1
    return loader.load(key)


def then(value: T | Awaitable[T], fn: Callable[[T], R]) -> R | Awaitable[R]:
    """fn(value) now, or a coroutine applying fn once `value` is awaited."""
    if is_awaitable(value):
        async def later() -> R:
            return fn(await value)

        return later()
    return fn(value)


# --------------------------------------------------------------------------- what each link loads

@dataclass(frozen=True)
class Link:
    """How a field's resolver reaches its value, so the value can be loaded ahead."""

    loader: Callable[[Any], DataLoader | None]  # from the request's Loaders
    key: Callable[[Any, dict[str, Any]], Any]  # (parent row, field arguments) → key, or None
    child_type: str  # the GraphQL type of the rows it yields
    children: Callable[[Any, dict[str, Any]], Iterable[Any]] = lambda value, args: () if value is None else (value,)
    scope: str | None = None  # not followed without it: the resolver answers FORBIDDEN
    connection: bool = False  # the children sit under `edges { node }`
    #: A loader reading this link's values in one statement with more, from (the request's Loaders,
    #: the fields its children select, the links followed beside it), or None for `loader`. It
    #: primes the loaders of what else it read, so their fields find their values there.
    joined: Callable[[Any, set[str], set[str]], DataLoader | None] | None = None
    #: Links beside this one whose values `joined` may read: they are followed after it.
    fills: frozenset[str] = frozenset()


def _first(args: dict[str, Any], default: int) -> int | None:
    """A `first` argument as the resolver sees it.

    strawberry's selected_fields gives literals as written (the string "5");
    validation has already checked they are Ints.
    """
    value = args.get("first", default)
    return int(value) if isinstance(value, str) else value


def _many(value: Any, args: dict[str, Any]) -> Iterable[Any]:
    return value or ()


def _page_rows(default_first: int) -> Callable[[Any, dict[str, Any]], Iterable[Any]]:
    def rows(page: Any, args: dict[str, Any]) -> Iterable[Any]:
        return page.rows[:page_size(_first(args, default_first))]

    return rows


def claims_page_key(member_id: str, first: int | None, after: str | None) -> tuple[str, int, int | None]:
    """Member.claims' loader key: the resolver and the prefetch must agree on it exactly."""
    before = decode_cursor("claim", after, int)
    return (member_id, page_size(first) + 1, before[0] if before else None)


def _member_claims(loaders: Any, children: set[str], siblings: set[str]) -> DataLoader | None:
    """A member's claims with their lines and the member's enrolments, as the selection asks: one statement."""
    lines, enrollments = "lines" in children, "enrollments" in siblings
    return loaders.member_claims(lines=lines, enrollments=enrollments) if lines or enrollments else None


def _today() -> Any:
    return datetime.now(SHANGHAI).date()


LINKS: dict[str, dict[str, Link]] = {
    "Member": {
        "employer": Link(lambda l: l.employer_by_id, lambda r, a: r.employer_id, "Employer"),
        "organization": Link(lambda l: l.organization_by_id, lambda r, a: r.organization_id, "Organization"),
        "enrollments": Link(lambda l: l.enrollments_by_member_id, lambda r, a: r.id, "Enrollment",
                            children=_many, scope=scopes.CLAIMS_READ),
        "claims": Link(lambda l: l.claims_by_member_id,
                       lambda r, a: claims_page_key(r.id, _first(a, 20), a.get("after")), "Claim",
                       children=_page_rows(20), scope=scopes.CLAIMS_READ, connection=True,
                       joined=_member_claims, fills=frozenset({"enrollments"})),
        "medicalInsurance": Link(lambda l: l.coverage_by_national_id, lambda r, a: (r.national_id, _today()),
                                 "MedicalInsuranceCoverage", scope=scopes.CLAIMS_READ),
    },
    "Employer": {
        "organization": Link(lambda l: l.organization_by_id, lambda r, a: r.organization_id, "Organization"),
        "memberCount": Link(lambda l: l.member_count_by_employer_id, lambda r, a: r.id, "Int",
                            children=lambda v, a: (), scope=scopes.MEMBERS_READ),
    },
    "Organization": {
        "parent": Link(lambda l: l.organization_by_id, lambda r, a: r.parent_id, "Organization"),
        "children": Link(lambda l: l.organizations_by_parent_id, lambda r, a: r.id, "Organization", children=_many),
    },
    "Enrollment": {
        "plan": Link(lambda l: l.plan_by_code, lambda r, a: r.plan_code, "Plan"),
        "member": Link(lambda l: l.member_by_id, lambda r, a: r.member_id, "Member", scope=scopes.MEMBERS_READ),
    },
    "Claim": {
        "lines": Link(lambda l: l.claim_lines_by_claim_id, lambda r, a: r.id, "ClaimLine", children=_many),
        "member": Link(lambda l: l.member_by_id, lambda r, a: r.member_id, "Member", scope=scopes.MEMBERS_READ),
        "settlement": Link(lambda l: l.settlement_by_id, lambda r, a: r.settlement_id, "MedicalSettlement"),
    },
    "BargainingContract": {
        "employer": Link(lambda l: l.employer_by_id, lambda r, a: r.employer_id, "Employer"),
        "organization": Link(lambda l: l.organization_by_id, lambda r, a: r.organization_id, "Organization"),
    },
    "RecruitmentEvent": {
        "organizer": Link(lambda l: l.organization_by_id, lambda r, a: r.organizer_id, "Organization"),
        "employers": Link(lambda l: l.employers_by_event_id, lambda r, a: r.id, "Employer", children=_many),
        "postings": Link(lambda l: l.postings_by_event_id, lambda r, a: r.id, "JobPosting", children=_many),
    },
    "JobPosting": {
        "employer": Link(lambda l: l.employer_by_id, lambda r, a: r.employer_id, "Employer"),
        "event": Link(lambda l: l.event_by_id, lambda r, a: r.event_id, "RecruitmentEvent"),
    },
}


# --------------------------------------------------------------------------- walking the selection

def _fields(selections: Iterable[Any], type_name: str) -> list[SelectedField]:
    """The fields selected on `type_name`, fragments flattened."""
    out: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            out.append(selection)
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            if selection.type_condition in (None, type_name):
                out.extend(_fields(selection.selections, type_name))
    return out


def _node_selections(field: SelectedField) -> list[Any]:
    """What a connection field selects on each `edges { node }`."""
    out: list[Any] = []
    for edges in _fields(field.selections, ""):
        if edges.name == "edges":
            for node in _fields(edges.selections, ""):
                if node.name == "node":
                    out.extend(node.selections)
    return out


def selected_names(selected: list[SelectedField], type_name: str) -> set[str]:
    """Names of the fields an object field (`info.selected_fields`) selects on its `type_name` value."""
    return {f.name for field in selected for f in _fields(field.selections, type_name)}


def connection_selections(selected: list[SelectedField], connection_type: str,
                          node_type: str) -> tuple[set[str], set[str]]:
    """Names of the fields a connection field (`info.selected_fields`) selects on itself and on each node."""
    on_connection: set[str] = set()
    on_node: set[str] = set()
    for field in selected:
        on_connection.update(f.name for f in _fields(field.selections, connection_type))
        on_node.update(f.name for f in _fields(_node_selections(field), node_type))
    return on_connection, on_node


async def prefetch(info: Info, type_name: str, rows: Iterable[Any], selections: Iterable[Any] | None = None) -> None:
    """Load every link `selections` (default: the current field's) asks of `rows`, one batch per link and level."""
    rows = [r for r in rows if r is not None]
    if not rows:
        return
    if selections is None:
        selections = [s for f in info.selected_fields for s in f.selections]
    links = LINKS.get(type_name, {})
    viewer = info.context.viewer
    followed = [(field, link) for field in _fields(selections, type_name)
                if (link := links.get(field.name)) is not None and (link.scope is None or viewer.has(link.scope))]
    if not followed:
        return
    names = {field.name for field, _ in followed}
    # A link that may read a sibling's values in its own statement goes first; the
    # sibling then finds them loaded. The N+1 baseline joins nothing, so waits for nothing.
    later = {n for _, link in followed for n in link.fills} & names if info.context.loaders.batching else set()
    await asyncio.gather(*(_follow(info, link, rows, field, names) for field, link in followed
                           if field.name not in later))
    if later:
        await asyncio.gather(*(_follow(info, link, rows, field, names) for field, link in followed
                               if field.name in later))


async def connection_prefetch(info: Info, type_name: str, rows: Iterable[Any],
                              selected: list[SelectedField] | None = None) -> None:
    """prefetch() for a root connection field: its rows are under `edges { node }`.

    `selected`: info.selected_fields when the caller has it already (strawberry
    converts the whole selection on every read of it).
    """
    for field in info.selected_fields if selected is None else selected:
        await prefetch(info, type_name, rows, _node_selections(field))


async def _follow(info: Info, link: Link, rows: list[Any], field: SelectedField, siblings: set[str]) -> None:
    loaders = info.context.loaders
    loader = link.loader(loaders)
    if loader is None:
        return
    # The N+1 baseline (batching off) keeps one statement per link, as a naive schema would.
    if link.joined and loaders.batching:
        child_selections = _node_selections(field) if link.connection else field.selections
        loader = link.joined(loaders, {f.name for f in _fields(child_selections, link.child_type)}, siblings) or loader
    args = field.arguments or {}
    try:
        keys = {k for r in rows if (k := link.key(r, args)) is not None}
    except Exception:  # noqa: BLE001 - bad arguments: the field's own resolver reports them
        return
    if not keys:
        return
    # A key that failed (the insurance system is down) is the resolver's to report.
    results = await load_all(loader, keys)
    children: list[Any] = []
    for result in results:
        if not isinstance(result, BaseException):
            children.extend(link.children(result, args))
    if children and link.child_type in LINKS:
        selections = _node_selections(field) if link.connection else field.selections
        await prefetch(info, link.child_type, children, selections)
