"""Scrubbing of secrets and personal data from text bound for logs and spans (defence in depth).

The code never puts an API key, national id or phone number on a span or in
a log line; this is the net under that rule. A national id is any 18-digit
run (17 digits and a check character): an unrelated 18-digit number is
scrubbed too, which is the safe mistake. Names cannot be recognised by
pattern, so attributes whose key says they hold personal data are dropped
whatever their value.
"""
from __future__ import annotations

import re
from typing import Any

from sources.sql import VALUE_QUOTE

REDACTED = "[REDACTED]"

_VALUE_PATTERNS = re.compile(
    re.escape(VALUE_QUOTE) + r"[\s\S]*?" + re.escape(VALUE_QUOTE) + "|"  # values inlined into SQL text (sources/sql.py)
    r"(?<!\d)\d{17}[\dXx](?!\d)"  # national id (GB 11643)
    r"|(?<!\d)1[3-9]\d{9}(?!\d)"  # mainland mobile number
    r"|ugk_[A-Za-z0-9]+_[A-Za-z0-9_\-]+"  # our API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]+"  # any bearer credential
)

#: Attribute keys whose values are personal data or credentials whatever they look like.
_SENSITIVE_KEY = re.compile(
    r"national|id_?card|phone|mobile|authorization|api[._-]?key|secret|password|passwd|cookie|credential"
    r"|member\.name|person\.name|user\.name|\bname_cn\b",
    re.IGNORECASE,
)


def scrub_text(text: str) -> str:
    """`text` with national ids, phone numbers and keys replaced by [REDACTED]."""
    return _VALUE_PATTERNS.sub(REDACTED, text)


def sensitive_key(key: str) -> bool:
    """Whether an attribute named `key` may hold personal data or a credential."""
    return _SENSITIVE_KEY.search(key) is not None


def scrub_value(key: str, value: Any) -> Any:
    """An attribute value safe to export under `key`."""
    if sensitive_key(key):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (list, tuple)):
        return tuple(scrub_text(v) if isinstance(v, str) else v for v in value)
    return value


def needs_scrubbing(key: str, value: Any) -> bool:
    """Cheap check so that clean attributes (nearly all) are not copied."""
    if sensitive_key(key):
        return True
    if isinstance(value, str):
        return _VALUE_PATTERNS.search(value) is not None
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, str) and _VALUE_PATTERNS.search(v) for v in value)
    return False
