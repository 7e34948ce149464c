"""Digests and row-by-row comparison of read-model tables. Pure: rows come in as values.

A row is the tuple of its compared columns as PostgreSQL prints them (``col::text``), so a
timestamp, a double or an array compares exactly as stored. A table's digest is the SHA-256
of its rows' canonical encodings in sorted order: it does not depend on row order, physical
layout or the schema the table lives in. The overall digest covers every table's name, row
count and digest.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

Row = tuple[str | None, ...]


def encode_row(row: Sequence[str | None]) -> bytes:
    """The canonical bytes of one row."""
    return orjson.dumps(list(row))


@dataclass(frozen=True, slots=True)
class TableDigest:
    table: str
    rows: int
    digest: str


def table_digest(table: str, rows: Iterable[Sequence[str | None]]) -> TableDigest:
    """The digest of a table's rows, in any order."""
    encoded = sorted(encode_row(r) for r in rows)
    h = hashlib.sha256()
    for line in encoded:
        h.update(line)
        h.update(b"\n")
    return TableDigest(table, len(encoded), h.hexdigest())


def overall_digest(tables: Iterable[TableDigest]) -> str:
    """One digest over every table (name, row count, digest), in table-name order."""
    h = hashlib.sha256()
    for t in sorted(tables, key=lambda t: t.table):
        h.update(f"{t.table}:{t.rows}:{t.digest}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class RowChange:
    """Rows of one key that differ: ``before`` only on the left, ``after`` only on the right."""

    key: Row
    before: tuple[Row, ...]
    after: tuple[Row, ...]

    @property
    def kind(self) -> str:
        """``changed`` (on both sides), ``removed`` (left only) or ``added`` (right only)."""
        if self.before and self.after:
            return "changed"
        return "removed" if self.before else "added"


@dataclass(slots=True)
class TableDiff:
    """How two versions of a table differ, by row key; ``changes`` is bounded by ``limit``."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    changed: int = 0
    removed: int = 0
    added: int = 0
    changes: list[RowChange] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.changed or self.removed or self.added)


def compare(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    left: Iterable[Sequence[str | None]],
    right: Iterable[Sequence[str | None]],
    limit: int = 20,
) -> TableDiff:
    """Compare two tables row by row as multisets; group differing rows by ``key``.

    ``left`` is the reference (live), ``right`` the candidate (rebuilt or sandbox).
    """
    index = [columns.index(k) for k in key]
    lc = Counter(tuple(r) for r in left)
    rc = Counter(tuple(r) for r in right)
    only_left = lc - rc
    only_right = rc - lc
    by_key: dict[Row, tuple[list[Row], list[Row]]] = {}
    for rows, side in ((only_left, 0), (only_right, 1)):
        for row, n in rows.items():
            entry = by_key.setdefault(tuple(row[i] for i in index), ([], []))
            entry[side].extend([row] * n)
    diff = TableDiff(table, tuple(columns), tuple(key))
    for k in sorted(by_key, key=encode_row):
        before, after = by_key[k]
        change = RowChange(k, tuple(sorted(before, key=encode_row)),
                           tuple(sorted(after, key=encode_row)))  # fmt: skip
        setattr(diff, change.kind, getattr(diff, change.kind) + 1)
        if len(diff.changes) < limit:
            diff.changes.append(change)
    return diff


def changed_columns(columns: Sequence[str], before: Row, after: Row) -> list[str]:
    """The columns whose values differ between two rows of the same key."""
    return [c for c, b, a in zip(columns, before, after, strict=True) if b != a]
