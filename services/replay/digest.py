"""Digests and row-by-row comparison of read-model tables. Pure: rows come in as values.

A row is the tuple of its compared columns as PostgreSQL prints them (``col::text``), so a
timestamp, a double or an array compares exactly as stored. A table's digest is the SHA-256
of its rows' canonical encodings in sorted order: it does not depend on row order, physical
layout or the schema the table lives in. The overall digest covers every table's name, row
count and digest.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from events.json_bytes import dumps_to_keep

Row = tuple[str | None, ...]


def encode_row(row: Sequence[str | None]) -> bytes:
    """The canonical bytes of one row (kept: a digest holds one per row until it sorts them)."""
    return dumps_to_keep(list(row))


@dataclass(frozen=True, slots=True)
class TableDigest:
    table: str
    rows: int
    digest: str


def table_digest(table: str, rows: Iterable[Sequence[str | None]]) -> TableDigest:
    """The digest of a table's rows, in any order."""
    return encoded_digest(table, [encode_row(r) for r in rows])


def encoded_digest(table: str, encoded: list[bytes]) -> TableDigest:
    """The digest of a table whose rows are given as ``encode_row`` bytes (sorted in place):
    a caller that streams rows keeps only these bytes, not the rows."""
    encoded.sort()
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


class DiffSample:
    """The first ``limit`` differing keys (in ``encode_row`` order of the key) with their rows,
    from differing rows streamed in any order: memory is bounded by ``limit``, not by how
    many rows differ.

    Once ``limit`` keys are held, the largest held key can only get smaller, so a key that is
    skipped or dropped is never needed again: every one of its later rows is skipped too.
    """

    def __init__(self, key_index: Sequence[int], limit: int) -> None:
        self._index = tuple(key_index)
        self._limit = limit
        self._order: list[bytes] = []  # the held keys' encodings, sorted
        self._held: dict[bytes, tuple[Row, tuple[list[Row], list[Row]]]] = {}

    def add(self, side: int, row: Sequence[str | None]) -> None:
        """One row that is only on the left (``side`` 0) or only on the right (1)."""
        key = tuple(row[i] for i in self._index)
        enc = encode_row(key)
        entry = self._held.get(enc)
        if entry is None:
            if self._limit <= 0:
                return
            if len(self._order) >= self._limit:
                if enc > self._order[-1]:
                    return
                del self._held[self._order.pop()]
            bisect.insort(self._order, enc)
            entry = self._held[enc] = (key, ([], []))
        entry[1][side].append(tuple(row))

    def changes(self) -> list[RowChange]:
        """The held keys' changes, in key order; each side's rows in ``encode_row`` order."""
        out = []
        for enc in self._order:
            key, (before, after) = self._held[enc]
            out.append(RowChange(key, tuple(sorted(before, key=encode_row)),
                                 tuple(sorted(after, key=encode_row))))  # fmt: skip
        return out


def kind_counts(keys: Iterable[tuple[Row, int]]) -> tuple[int, int, int]:
    """(changed, removed, added) keys, from each differing row's key and side (0 left, 1
    right): a key with rows on both sides changed, on the left only was removed."""
    sides: dict[Row, int] = {}
    for key, side in keys:
        sides[key] = sides.get(key, 0) | (1 << side)
    n = Counter(sides.values())
    return n[3], n[1], n[2]


def compare(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    left: Iterable[Sequence[str | None]],
    right: Iterable[Sequence[str | None]],
    limit: int = 20,
) -> TableDiff:
    """Compare two tables row by row as multisets; group differing rows by ``key``.

    ``left`` is the reference (live), ``right`` the candidate (rebuilt or sandbox). In memory;
    ``services.replay.tables`` does the same in PostgreSQL for tables of any size.
    """
    index = [columns.index(k) for k in key]
    lc = Counter(tuple(r) for r in left)
    rc = Counter(tuple(r) for r in right)
    differing = [(0, row) for row, n in (lc - rc).items() for _ in range(n)]
    differing += [(1, row) for row, n in (rc - lc).items() for _ in range(n)]
    sample = DiffSample(index, limit)
    for side, row in differing:
        sample.add(side, row)
    changed, removed, added = kind_counts(
        (tuple(row[i] for i in index), side) for side, row in differing
    )
    return TableDiff(table, tuple(columns), tuple(key), changed, removed, added, sample.changes())


def changed_columns(columns: Sequence[str], before: Row, after: Row) -> list[str]:
    """The columns whose values differ between two rows of the same key."""
    return [c for c, b, a in zip(columns, before, after, strict=True) if b != a]
