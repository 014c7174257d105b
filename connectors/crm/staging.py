"""CRM staging: `staging.crm_<object>`, the current state of each object's raw records, typed."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from connectors.crm.properties import (
    CRM_PROPERTY_TYPES,
    ConversionError,
    convert_properties,
    convert_value,
)
from connectors.crm.tables import CRM_OBJECTS, RAW_CRM_TABLES, STAGING_CRM_TABLES


def stage_crm(con: duckdb.DuckDBPyConnection, crm_object: str) -> pa.Table:
    """`staging.crm_<object>`: every record of `raw.crm_<object>` (the current state), typed.

    Raw only holds records whose properties converted when they were loaded; should one not
    convert now (e.g. loaded by an older version), its unconvertible fields are null.
    """
    if crm_object not in CRM_OBJECTS:
        raise ValueError(f"unknown CRM object {crm_object!r}; expected one of {CRM_OBJECTS}")
    raw, staging = RAW_CRM_TABLES[crm_object], STAGING_CRM_TABLES[crm_object]
    raw.create(con)
    rows = con.execute(
        f"SELECT id, properties::VARCHAR, archived, _source_ref, _batch_id FROM {raw.fqn} "
        "ORDER BY TRY_CAST(id AS HUGEINT) NULLS LAST, id"
    ).fetchall()
    kinds = CRM_PROPERTY_TYPES[crm_object]
    columns: dict[str, list[Any]] = {name: [] for name in staging.column_names}
    for record_id, properties_json, archived, source_ref, batch_id in rows:
        properties = json.loads(properties_json)
        try:
            typed = convert_properties(crm_object, properties)
        except ConversionError:
            typed = {}
            for name, kind in kinds.items():
                try:
                    typed[name] = convert_value(kind, properties.get(name))
                except ValueError:
                    typed[name] = None
        columns["id"].append(record_id)
        for name in kinds:
            columns[name].append(typed[name])
        columns["archived"].append(bool(archived))
        columns["_source_ref"].append(source_ref)
        columns["_batch_id"].append(batch_id)
    return pa.table(columns, schema=staging.arrow_schema())
