"""CRM property values (docs/sources.md): the properties the connector requests per object, their
types, and the typed conversion of the strings the API sends.

Raw keeps each record as the API sent it: `properties` is the JSON object of strings, exactly
as received. The typed conversion of those strings lives here, in `convert_properties`, and is
used twice: by the connector to reject a record that does not convert (so raw only ever holds
records that do), and by `stage_crm` to build the staging rows. One function, so the two can
never disagree about what a valid `amount` or `closedate` is.

Property types (HubSpot sends every property value as a string):
- number: a plain decimal (`12`, `-3.5`, `1e6`); anything else (`12,3x`, `NaN`) is rejected.
- timestamp: milliseconds since the epoch (`1735689600000`), or ISO-8601 (`2025-01-01`,
  `2025-01-01T10:00:00Z`, `...+02:00`); a value without an offset is UTC.
- boolean: `true` / `false` (any case).
- text: as sent.
An empty string or a missing property is null for every type.

Contacts carry personal data in the CRM (email, names, phone). The connector never requests
those properties, and staging lists its columns explicitly, so personal data reaches neither
raw nor staging (and therefore never the marts or the BI snapshot).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

NUMBER, TIMESTAMP, BOOLEAN, TEXT = "number", "timestamp", "boolean", "text"

_COMMON = {"createdate": TIMESTAMP, "hs_lastmodifieddate": TIMESTAMP}

CRM_PROPERTY_TYPES: dict[str, dict[str, str]] = {
    "companies": {
        "name": TEXT,
        "domain": TEXT,
        "industry": TEXT,
        "lifecyclestage": TEXT,
        "annualrevenue": NUMBER,
        "country": TEXT,
        **_COMMON,
    },
    "contacts": {"lifecyclestage": TEXT, "country": TEXT, **_COMMON},
    "deals": {
        "dealname": TEXT,
        "amount": NUMBER,
        "dealstage": TEXT,
        "pipeline": TEXT,
        "closedate": TIMESTAMP,
        "hs_is_closed_won": BOOLEAN,
        "associated_company_id": TEXT,
        **_COMMON,
    },
}
"""Per object, the properties the connector requests and staging carries, with their type.
Contacts' personal properties (email, firstname, lastname, phone) are deliberately absent."""

PERSONAL_PROPERTIES = {"contacts": ("email", "firstname", "lastname", "phone")}

_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_EPOCH_MS_RE = re.compile(r"-?\d{1,15}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ConversionError(ValueError):
    """A property value that does not convert to its type; `field` names the property."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_timestamp(value: Any) -> datetime | None:
    """A CRM timestamp (ms epoch or ISO-8601, UTC when no offset) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        text = str(int(value)) if float(value).is_integer() else ""
    else:
        text = str(value).strip()
    if text == "":
        return None
    if _EPOCH_MS_RE.fullmatch(text):
        try:
            return _EPOCH + timedelta(milliseconds=int(text))
        except OverflowError:
            raise ValueError(f"{text!r} is out of range for a timestamp") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a timestamp; expected milliseconds since the epoch or ISO-8601 "
            "such as 2025-01-31 or 2025-01-31T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch, rounded down (so a GTE filter stays inclusive)."""
    delta = value.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def convert_value(kind: str, value: Any) -> Any:
    """One property value (a string, as the API sends it) converted to `kind`; raises
    ValueError with a readable reason."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if kind == TEXT:
        return value if isinstance(value, str) else json.dumps(value)
    if kind == NUMBER:
        text = str(value).strip()
        number = float(text) if _NUMBER_RE.fullmatch(text) else math.nan
        if not math.isfinite(number):
            raise ValueError(
                f"{text!r} is not a number; expected a plain decimal such as 12, -3.5 or 1e6"
            )
        return number
    if kind == BOOLEAN:
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise ValueError(f"{value!r} is not a boolean; expected true or false")
        return text == "true"
    if kind == TIMESTAMP:
        return parse_timestamp(value)
    raise AssertionError(f"unknown property type {kind}")


def convert_properties(crm_object: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The object's typed properties (every property of `CRM_PROPERTY_TYPES`, null when absent).
    Raises ConversionError for the first property that does not convert; its message lists
    every failing property."""
    typed: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for name, kind in CRM_PROPERTY_TYPES[crm_object].items():
        try:
            typed[name] = convert_value(kind, properties.get(name))
        except ValueError as exc:
            errors.append((name, f"{name} {exc}"))
    if errors:
        raise ConversionError(errors[0][0], "; ".join(message for _, message in errors))
    return typed
