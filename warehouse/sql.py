"""Quoting for SQL text: the one place an identifier or a string from config or data is quoted."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """An identifier for SQL text, whatever it contains."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A string literal for SQL text where a bind parameter cannot go (DDL, comments, option
    values): the one place text from config or data is quoted."""
    return "'" + text.replace("'", "''") + "'"
