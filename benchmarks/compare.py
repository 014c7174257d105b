"""Row-level agreement of two tables (issue 15: compare rows, not sums).

Both tables are joined on their key columns (a FULL join, so a row on one side only is a
mismatch); every other column of the reference side is compared with the project's column of
the same name: exactly for text, dates and booleans, to a tolerance for doubles that is
relative above 1 and absolute below (|a - b| <= tol * max(|a|, |b|, 1)), and a null equals only
a null. The floor matters for differences of nearly equal values (a KPI's change_abs when two
periods average alike): their rounding error is that of the operands, so a side summing in
another order gives -7e-15 where the other gives 0.
"""

from __future__ import annotations

from warehouse.sql import quote_ident

REL_TOLERANCE = 1e-9
FLOATS = ("DOUBLE", "FLOAT", "REAL")


def compare_rows(con, project: str, reference: str, keys: list[str],
                 tolerance: float = REL_TOLERANCE, show: int = 5) -> dict:
    """{compared, mismatched, only_project, only_reference, first: [text]} for the two tables
    (qualified names the caller controls; column names quoted)."""
    columns = [
        (name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {reference}").fetchall()
        if name not in keys
    ]
    on = " AND ".join(f"p.{quote_ident(k)} = r.{quote_ident(k)}" for k in keys)
    tests = []
    for name, kind in columns:
        p, r = f"p.{quote_ident(name)}", f"r.{quote_ident(name)}"
        if kind.upper() in FLOATS:
            tests.append(f"({p} IS NOT DISTINCT FROM {r} OR abs({p} - {r}) <= "
                         f"{tolerance!r} * greatest(abs({p}), abs({r}), 1.0))")
        else:
            tests.append(f"({p} IS NOT DISTINCT FROM {r})")
    def listed(side: str, names) -> str:
        return "[" + ", ".join(f"{side}.{quote_ident(n)}::VARCHAR" for n in names) + "]"

    bad = " OR ".join(f"NOT coalesce({t}, false)" for t in tests) or "false"
    first_key = quote_ident(keys[0])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cmp AS
        SELECT p.{first_key} IS NULL AS only_reference, r.{first_key} IS NULL AS only_project,
               ({bad}) AS mismatch, {listed("p", keys)}::VARCHAR AS pk,
               {listed("r", keys)}::VARCHAR AS rk,
               {listed("p", [n for n, _ in columns])}::VARCHAR AS pv,
               {listed("r", [n for n, _ in columns])}::VARCHAR AS rv
        FROM {project} p FULL JOIN {reference} r ON {on}
    """)
    compared, mismatched, only_p, only_r = con.execute(
        "SELECT count(*) FILTER (WHERE NOT only_reference AND NOT only_project), "
        "count(*) FILTER (WHERE mismatch AND NOT only_reference AND NOT only_project), "
        "count(*) FILTER (WHERE only_project), count(*) FILTER (WHERE only_reference) FROM cmp"
    ).fetchone()
    names = "[" + ", ".join(n for n, _ in columns) + "]"
    first = [
        f"{reference} key {coalesce_key}: {kind} project {pv} vs reference {rv} (columns {names})"
        for coalesce_key, kind, pv, rv in con.execute(
            "SELECT coalesce(pk, rk), CASE WHEN only_project THEN 'only in project;' "
            "WHEN only_reference THEN 'only in reference;' ELSE '' END, pv, rv FROM cmp "
            f"WHERE mismatch OR only_project OR only_reference ORDER BY 1 LIMIT {int(show)}"
        ).fetchall()
    ]
    return {"compared": compared, "mismatched": mismatched, "only_project": only_p,
            "only_reference": only_r, "first": first}


def agrees(result: dict) -> bool:
    return result["compared"] > 0 and not (
        result["mismatched"] or result["only_project"] or result["only_reference"])
