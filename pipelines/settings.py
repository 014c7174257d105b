"""Settings from the environment (docs/settings.md), with defaults that run the demo from a
fresh clone. Read once, when the Definitions load."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from connectors.registry import API_SOURCES, SOURCES
from connectors.source import DEFAULT_MAX_AGE_DAYS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = PROJECT_ROOT / "examples" / "acme"
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "var" / "dagster_home"
"""The Dagster instance `okr` and `make dev` share when DAGSTER_HOME is unset."""
INSTANCE_TEMPLATE = PROJECT_ROOT / "pipelines" / "dagster.yaml"
"""Copied into a DAGSTER_HOME that has no dagster.yaml yet (kept out of the project root, where
`dagster dev` would warn that a dagster.yaml there is not the instance's)."""
POSTGRES_INSTANCE_TEMPLATE = PROJECT_ROOT / "pipelines" / "dagster_postgres.yaml"
"""The instance template when DAGSTER_PG_URL_ENV is set: runs, event logs, schedules and sensor
cursors in PostgreSQL, for the daemon, the webserver and code servers as separate processes."""
DAGSTER_PG_URL_ENV = "OKR_DAGSTER_PG_URL"
EXAMPLE_AS_OF = "2026-11-20"
"""The last day of the shipped example data: the demo measures as of this day."""
MAX_REJECT_RATE_ENV = "OKR_MAX_REJECT_RATE"
SOURCE_MAX_AGE_ENV = "OKR_SOURCE_MAX_AGE_DAYS"
ALERT_WEBHOOK_URL_ENV = "OKR_ALERT_WEBHOOK_URL"
"""Where alerts are posted (pipelines/alerts.py): read from the environment by the alerts sensor
(is it set?) and by the run that posts, never stored."""
ALERT_INTERVAL_ENV = "OKR_ALERT_INTERVAL_SECONDS"
SOURCE_FAMILIES = tuple(source.name for source in SOURCES)


@dataclass(frozen=True)
class ChecksSettings:
    """Thresholds of the checks; `from_env` reads them from the environment."""

    max_reject_rate: float = 0.05
    source_max_age_days: Mapping[str, int] = field(
        default_factory=lambda: {source.name: source.max_age_days for source in SOURCES}
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChecksSettings:
        environ = os.environ if environ is None else environ
        defaults = cls()
        rate_text = (environ.get(MAX_REJECT_RATE_ENV) or "").strip()
        rate = defaults.max_reject_rate
        if rate_text:
            try:
                rate = float(rate_text)
            except ValueError:
                rate = -1.0
            if not 0 <= rate <= 1:
                raise ValueError(
                    f"{MAX_REJECT_RATE_ENV}={rate_text!r}: expected a fraction between 0 and 1, "
                    "e.g. 0.05 for 5%"
                )
        ages = dict(defaults.source_max_age_days)
        age_text = (environ.get(SOURCE_MAX_AGE_ENV) or "").strip()
        if age_text:
            ages |= _parse_ages(age_text)
        return cls(max_reject_rate=rate, source_max_age_days=ages)

    def max_age(self, family: str) -> int:
        """A family not named (a source added since) keeps the default."""
        return self.source_max_age_days.get(family, DEFAULT_MAX_AGE_DAYS)


def _parse_ages(text: str) -> dict[str, int]:
    hint = (
        f"{SOURCE_MAX_AGE_ENV}={text!r}: expected whole days, for every source ('2') or per "
        f"source family ('csv=2,analytics=1,crm=7'; families: {', '.join(SOURCE_FAMILIES)})"
    )
    items = [item.strip() for item in text.split(",") if item.strip()]
    if len(items) == 1 and "=" not in items[0]:
        items = [f"{family}={items[0]}" for family in SOURCE_FAMILIES]
    ages: dict[str, int] = {}
    for item in items:
        family, _, days = (part.strip() for part in item.partition("="))
        if family not in SOURCE_FAMILIES or not days.isdigit():
            raise ValueError(hint)
        ages[family] = int(days)
    return ages


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    data_dir: Path
    warehouse: Path
    bi_snapshot: Path
    as_of: str | None
    duckdb_memory_limit: str = "1GB"
    """DuckDB's buffer budget per step; with Python and Polars on top a run stays under 2 GB."""
    api_sources: frozenset[str] = frozenset()
    """The API sources whose assets exist: those whose base URL is set (CRM_API_BASE_URL for
    the CRM); their tokens stay EnvVars."""
    warehouse_lock_timeout: float = 180.0
    """OKR_WAREHOUSE_LOCK_TIMEOUT: seconds a step waits for another process holding the
    warehouse file (a notebook, the duckdb CLI) before it fails naming it."""
    strict_files: bool = False
    """OKR_STRICT_FILES: a source file that cannot be read fails the raw step (after the others
    loaded) instead of only being quarantined."""
    sql_source_table: str | None = None
    """OKR_SQL_SOURCE_TABLE (default `events`) when OKR_SQL_SOURCE_URL is set: the SQL-engine
    source's assets exist; the URL itself is read at run time only (it holds the password)."""
    checks: ChecksSettings = field(default_factory=ChecksSettings)
    """The data-quality checks' thresholds (OKR_MAX_REJECT_RATE, OKR_SOURCE_MAX_AGE_DAYS)."""
    alert_interval_seconds: int = 60
    """OKR_ALERT_INTERVAL_SECONDS: the alerts sensor's minimum interval between ticks."""

    @classmethod
    def from_env(cls) -> Settings:
        def path(name: str, default: Path) -> Path:
            return Path(os.environ.get(name) or default).expanduser().resolve()

        def flag(name: str) -> bool:
            text = (os.environ.get(name) or "").strip().lower()
            if text not in ("", "0", "false", "no", "1", "true", "yes"):
                raise ValueError(f"{name}={text!r}: expected true, 1 or yes (or false, 0, no)")
            return text in ("1", "true", "yes")

        def seconds(name: str, default: float) -> float:
            text = (os.environ.get(name) or "").strip()
            try:
                value = float(text) if text else default
            except ValueError:
                value = -1.0
            if not 0 <= value < float("inf"):
                raise ValueError(f"{name}={text!r}: expected a number of seconds, 0 or more")
            return value

        def day(name: str) -> str | None:
            text = (os.environ.get(name) or "").strip() or None
            try:
                return text and date.fromisoformat(text).isoformat()
            except ValueError:
                raise ValueError(f"{name}={text!r}: expected a day YYYY-MM-DD") from None

        return cls(
            config_dir=path("OKR_CONFIG_DIR", EXAMPLE_DIR),
            data_dir=path("OKR_DATA_DIR", EXAMPLE_DIR / "data"),
            warehouse=path("OKR_WAREHOUSE", PROJECT_ROOT / "var" / "warehouse.duckdb"),
            bi_snapshot=path("OKR_BI_SNAPSHOT", PROJECT_ROOT / "var" / "okr_bi.duckdb"),
            as_of=day("OKR_AS_OF"),
            duckdb_memory_limit=os.environ.get("OKR_DUCKDB_MEMORY_LIMIT") or "1GB",
            api_sources=frozenset(
                source.name for source in API_SOURCES if os.environ.get(source.base_url_env)
            ),
            strict_files=flag("OKR_STRICT_FILES"),
            sql_source_table=(
                (os.environ.get("OKR_SQL_SOURCE_TABLE") or "events").strip()
                if os.environ.get("OKR_SQL_SOURCE_URL")
                else None
            ),
            warehouse_lock_timeout=seconds("OKR_WAREHOUSE_LOCK_TIMEOUT", 180.0),
            checks=ChecksSettings.from_env(os.environ),
            alert_interval_seconds=max(1, round(seconds(ALERT_INTERVAL_ENV, 60.0))),
        )


def dagster_pg_url(environ: Mapping[str, str] | None = None) -> str | None:
    """OKR_DAGSTER_PG_URL, the PostgreSQL database of the Dagster instance, or None when unset
    (the instance then stays SQLite under DAGSTER_HOME). A ValueError for a value that is not a
    PostgreSQL URL; the message never quotes the value, which holds the password."""
    environ = os.environ if environ is None else environ
    text = environ.get(DAGSTER_PG_URL_ENV) or ""
    if not text.strip():
        return None
    try:
        parts = urlsplit(text)
        port = parts.port  # a ValueError when it is not a number
    except ValueError:
        problem = "its host or port does not parse"
    else:
        if any(char.isspace() for char in text):
            problem = "it contains white space"
        elif parts.scheme in ("postgresql", "postgres"):
            # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not installed.
            problem = (
                f"it starts with {parts.scheme}://, which SQLAlchemy 2.1 reads as the psycopg 3 "
                "driver (not installed): write postgresql+psycopg2://"
            )
        elif parts.scheme != "postgresql+psycopg2":
            problem = "it does not start with postgresql+psycopg2://"
        elif not parts.username:
            problem = "it names no user"
        elif not parts.hostname and "host" not in parse_qs(parts.query):
            problem = "it names no host"
        elif not parts.path.strip("/") or "/" in parts.path.strip("/"):
            problem = "it names no database (the path after the host)"
        elif port == 0:
            problem = "its port is 0"
        else:
            return text
    raise ValueError(
        f"{DAGSTER_PG_URL_ENV} is not a PostgreSQL URL: {problem}; expected "
        "postgresql+psycopg2://USER:PASSWORD@HOST[:PORT]/DATABASE, the password percent-encoded "
        "(the value is not shown: it holds the password)"
    )
