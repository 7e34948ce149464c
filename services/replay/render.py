"""Terminal and JSON output of replay results, ``--verify`` and ``leadledger diff``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from services.replay.digest import TableDiff, TableDigest, changed_columns, overall_digest


def digest_table(
    title: str, left_name: str, left: list[TableDigest], right_name: str, right: list[TableDigest]
) -> Table:
    """Rows and digest per table for both sides, and whether they match."""
    table = Table("table", f"{left_name} rows", f"{right_name} rows", "digest", "match",
                  title=title)  # fmt: skip
    for lt, rt in zip(left, right, strict=True):
        same = lt.digest == rt.digest
        shown = rt.digest[:16] if same else f"{lt.digest[:16]} / {rt.digest[:16]}"
        table.add_row(lt.table, str(lt.rows), str(rt.rows), shown, "yes" if same else "NO")
    lo, ro = overall_digest(left), overall_digest(right)
    table.add_section()
    table.add_row("overall", "", "", lo if lo == ro else f"{lo[:16]} / {ro[:16]}",
                  "yes" if lo == ro else "NO")  # fmt: skip
    return table


def change_table(diff: TableDiff, left_name: str, right_name: str) -> Table:
    """The listed differing rows of one table: key, kind, and the columns that differ."""
    title = (f"{diff.table}: {diff.changed} changed, {diff.added} only in {right_name}, "
             f"{diff.removed} only in {left_name}")  # fmt: skip
    table = Table(*diff.key, "change", "column", left_name, right_name, title=title)
    for change in diff.changes:
        if change.kind == "changed":
            before, after = change.before[0], change.after[0]
            cols = changed_columns(diff.columns, before, after) or ["(duplicate rows)"]
            for i, col in enumerate(cols):
                j = diff.columns.index(col) if col in diff.columns else None
                table.add_row(
                    *(change.key if i == 0 else ("",) * len(change.key)),
                    "changed" if i == 0 else "", col,
                    _cell(before[j] if j is not None else None),
                    _cell(after[j] if j is not None else None),
                )  # fmt: skip
        else:
            table.add_row(*change.key, change.kind, "(row)",
                          "present" if change.before else "-",
                          "present" if change.after else "-")  # fmt: skip
    shown = diff.changed + diff.added + diff.removed
    if shown > len(diff.changes):
        table.caption = f"first {len(diff.changes)} of {shown} differing keys"
    return table


def _cell(value: str | None) -> str:
    if value is None:
        return "NULL"
    return value if len(value) <= 60 else value[:57] + "..."


def diff_json(
    left_name: str, right_name: str, left: list[TableDigest], right: list[TableDigest],
    diffs: list[TableDiff],
) -> dict[str, Any]:  # fmt: skip
    """The comparison as a JSON-ready dict (``--format json``)."""
    return {
        "left": left_name,
        "right": right_name,
        "equal": all(d.equal for d in diffs),
        "digest": {left_name: overall_digest(left), right_name: overall_digest(right)},
        "tables": [
            {
                "table": d.table,
                "rows": {left_name: lt.rows, right_name: rt.rows},
                "digest": {left_name: lt.digest, right_name: rt.digest},
                "changed": d.changed,
                "added": d.added,
                "removed": d.removed,
                "changes": [
                    {
                        "key": dict(zip(d.key, c.key, strict=True)),
                        "kind": c.kind,
                        "columns": (
                            {
                                col: {
                                    left_name: c.before[0][d.columns.index(col)],
                                    right_name: c.after[0][d.columns.index(col)],
                                }
                                for col in changed_columns(d.columns, c.before[0], c.after[0])
                            }
                            if c.kind == "changed"
                            else {}
                        ),
                    }
                    for c in d.changes
                ],
            }
            for d, lt, rt in zip(diffs, left, right, strict=True)
        ],
    }


def print_diffs(console: Console, diffs: list[TableDiff], left: str, right: str) -> None:
    for diff in diffs:
        if not diff.equal:
            console.print(change_table(diff, left, right))
