"""Comparing what different systems return for the same request."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal


def same_data(a: object, b: object) -> bool:
    """Exactly the same JSON data."""
    return a == b


def _instant(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(timezone.utc).isoformat()


def _money(value: str) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _claims(claims: list[dict]) -> list[tuple]:
    out = []
    for c in claims:
        lines = c["lines"] if "lines" in c else c["claimLinesByClaimId"]["nodes"]
        out.append((str(c["id"]), c["status"], _money(c["totalPayout"]),
                    tuple((l["benefit"], _money(l["amount"])) for l in lines)))
    return out


def normalize_postgraphile(workload: str, data: dict, *, ours: bool = False) -> object:
    """The data W1/W2 have in common between the gateway and PostGraphile."""
    if workload == "W1":
        m = data["member"] if ours else data["memberById"]
        if m is None:
            return None
        if ours:
            enrollments = [(e["id"], e["coverageStart"], e["plan"]["code"]) for e in m["enrollments"]]
            claims = [e["node"] for e in m["claims"]["edges"]]
            employer, org, total = m["employer"], m["organization"], m["claims"]["totalCount"]
        else:
            enrollments = [(str(e["id"]), e["coverageStart"], e["planByPlanCode"]["code"])
                           for e in m["enrollmentsByMemberId"]["nodes"]]
            claims = m["claimsByMemberId"]["nodes"]
            employer, org, total = m["employerByEmployerId"], m["organizationByOrganizationId"], m["claimsByMemberId"]["totalCount"]
        return (m["id"], m["name"], employer["id"], org["id"], sorted(enrollments), total,
                _claims(claims), [_instant(c["submittedAt"]) for c in claims])
    members = data["members"] if ours else data["membersUnder"]
    if ours:
        rows = [e["node"] for e in members["edges"]]
        return (members["totalCount"], [(
            r["id"], r["name"], r["employer"]["id"], r["organization"]["id"],
            sorted((e["id"], e["plan"]["code"]) for e in r["enrollments"]),
            _claims([c["node"] for c in r["claims"]["edges"]])) for r in rows])
    rows = members["nodes"]
    return (members["totalCount"], [(
        r["id"], r["name"], r["employerByEmployerId"]["id"], r["organizationByOrganizationId"]["id"],
        sorted((str(e["id"]), e["planByPlanCode"]["code"]) for e in r["enrollmentsByMemberId"]["nodes"]),
        _claims(r["claimsByMemberId"]["nodes"])) for r in rows])
