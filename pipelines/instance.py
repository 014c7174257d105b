"""Which Dagster instance `okr` and `make dev` use: $DAGSTER_HOME (default var/dagster_home), set
up on first use from pipelines/dagster.yaml (SQLite, one machine) or, when OKR_DAGSTER_PG_URL is
set, from pipelines/dagster_postgres.yaml (PostgreSQL: the daemon, the webserver and code servers
as separate processes). An instance folder set up one way is never switched to the other: a
mismatch is one line saying what to do.

`python -m pipelines.instance` does the same set-up for `make dev` and for deployments (it prints
the folder), and checks that the PostgreSQL server answers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipelines.settings import (
    DAGSTER_PG_URL_ENV,
    DEFAULT_DAGSTER_HOME,
    INSTANCE_TEMPLATE,
    POSTGRES_INSTANCE_TEMPLATE,
    dagster_pg_url,
)

CONNECT_TIMEOUT_SECONDS = 10
HOME_PLACEHOLDER = "__DAGSTER_HOME__"
"""What the instance template writes for the instance's own folder."""


def prepare_dagster_home(default: Path = DEFAULT_DAGSTER_HOME) -> Path:
    """Set DAGSTER_HOME (to `default` when unset), give it a dagster.yaml from the selected
    template if it has none, and check that the one it has fits the settings; with PostgreSQL,
    that the server answers. ValueError, in one line naming the setting, otherwise."""
    pg_url = dagster_pg_url()
    home = Path(os.environ.get("DAGSTER_HOME") or default)
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "dagster.yaml"
    if not config_file.exists():
        write_instance_file(home, POSTGRES_INSTANCE_TEMPLATE if pg_url else INSTANCE_TEMPLATE)
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{config_file} does not read as YAML: {exc}") from None
    if pg_url and not uses_postgres(config):
        raise ValueError(
            f"{DAGSTER_PG_URL_ENV} is set, but the instance in {home} keeps its runs on this "
            f"machine (its dagster.yaml has no PostgreSQL storage); point DAGSTER_HOME at a new "
            f"folder to start one from {POSTGRES_INSTANCE_TEMPLATE.name}, or unset "
            f"{DAGSTER_PG_URL_ENV}"
        )
    missing = sorted(name for name in env_references(config) if not os.environ.get(name))
    if missing:
        raise ValueError(
            f"the instance in {home} reads {', '.join(missing)} from the environment, which "
            f"{'is' if len(missing) == 1 else 'are'} unset (its dagster.yaml names "
            f"{'it' if len(missing) == 1 else 'them'} with `env:`); set "
            f"{'it' if len(missing) == 1 else 'them'}, or point DAGSTER_HOME at another folder"
        )
    stored = storage_folder(config)
    if stored == HOME_PLACEHOLDER:  # the template copied by hand: this is its folder
        write_instance_file(home, config_file)
    elif stored is not None and Path(stored).resolve() != home.resolve():
        raise ValueError(
            f"the instance in {home} keeps its run history in {stored} (its dagster.yaml says "
            f"so: was the folder moved or copied?); set base_dir in {config_file} to {home}, or "
            "point DAGSTER_HOME at a new folder"
        )
    if pg_url:
        check_postgres_answers(pg_url)
    return home


def write_instance_file(home: Path, template: Path) -> None:
    """`home`/dagster.yaml from `template`, with `home`'s absolute path where the template names
    its own folder (the SQLite storage's base_dir): a tool that opens the instance by its folder
    (`DagsterInstance.from_config`) finds its files whatever DAGSTER_HOME says."""
    text = template.read_text(encoding="utf-8")
    folder = json.dumps(str(home.resolve()))  # a double-quoted YAML scalar, any characters
    (home / "dagster.yaml").write_text(text.replace(HOME_PLACEHOLDER, folder), encoding="utf-8")


def storage_folder(config: Mapping[str, Any]) -> str | None:
    """The folder the project's SQLite storage of an instance config keeps its files in."""
    storage = config.get("storage")
    custom = storage.get("custom") if isinstance(storage, Mapping) else None
    if isinstance(custom, Mapping) and custom.get("module") == "pipelines.sqlite_storage":
        return str((custom.get("config") or {}).get("base_dir"))
    return None


def uses_postgres(config: Mapping[str, Any]) -> bool:
    """Whether an instance config keeps its runs in PostgreSQL."""
    storage = config.get("storage") or {}
    if isinstance(storage, Mapping) and "postgres" in storage:
        return True
    run_storage = config.get("run_storage") or {}
    return isinstance(run_storage, Mapping) and str(run_storage.get("module", "")).startswith(
        "dagster_postgres"
    )


def env_references(config: Any) -> Iterator[str]:
    """The names of the environment variables an instance config reads (`{env: NAME}`)."""
    if isinstance(config, Mapping):
        if set(config) == {"env"} and isinstance(config["env"], str):
            yield config["env"]
            return
        for value in config.values():
            yield from env_references(value)
    elif isinstance(config, list):
        for value in config:
            yield from env_references(value)


def check_postgres_answers(url: str) -> None:
    """One connection to the instance's database; ValueError naming the setting, the server and
    PostgreSQL's reason (never the password) when it fails."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        address = sqlalchemy.engine.make_url(url)
        engine = sqlalchemy.create_engine(
            address, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        )
    except Exception as exc:  # a URL SQLAlchemy reads differently from urllib
        raise ValueError(
            f"{DAGSTER_PG_URL_ENV} is not a URL SQLAlchemy can use ({type(exc).__name__}); "
            "expected postgresql+psycopg2://USER:PASSWORD@HOST[:PORT]/DATABASE"
        ) from None
    try:
        with engine.connect():
            pass
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        text = " ".join(line.strip() for line in reason[:2]) or type(exc).__name__
        if address.password:
            text = text.replace(str(address.password), "***")
        where = f"{address.host or 'the local socket'}:{address.port or 5432}/{address.database}"
        raise ValueError(
            f"{DAGSTER_PG_URL_ENV}: cannot connect to PostgreSQL at {where} as "
            f"{address.username}: {text}"
        ) from None
    finally:
        engine.dispose()


def main() -> int:
    try:
        home = prepare_dagster_home()
    except ValueError as exc:
        print(f"okr: {exc}", file=sys.stderr)
        return 2
    print(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
