"""The scopes of OPERATOR.md."""
from __future__ import annotations

MEMBERS_READ = "members:read"
PII_READ = "pii:read"
MEDICAL_READ = "medical:read"
CLAIMS_READ = "claims:read"
CLAIMS_WRITE = "claims:write"
CLAIMS_REVIEW = "claims:review"
ENROLLMENTS_WRITE = "enrollments:write"
CONTRACTS_READ = "contracts:read"
RECRUITMENT_READ = "recruitment:read"
STATS_READ = "stats:read"
INTROSPECTION = "introspection"
AUDIT_READ = "audit:read"

ALL_SCOPES = frozenset({
    MEMBERS_READ, PII_READ, MEDICAL_READ, CLAIMS_READ, CLAIMS_WRITE, CLAIMS_REVIEW, ENROLLMENTS_WRITE,
    CONTRACTS_READ, RECRUITMENT_READ, STATS_READ, INTROSPECTION, AUDIT_READ,
})
