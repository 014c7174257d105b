"""SQL-engine sources: an events table in any SQLAlchemy-reachable engine, aggregated there.
Only the per-day partials land in DuckDB (`connectors.sql_engine.pushdown`)."""
