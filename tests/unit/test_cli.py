"""The command line's offline commands: schema export and funnel check."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from events.codec import to_obj
from services.cli import app

from .factories import LEAD, at, moved

runner = CliRunner()


def test_schema_export_writes_one_json_schema_per_type_and_version(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "export", str(tmp_path / "schemas")])

    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert len(names) == 11
    assert "lead.stage_changed.v2.json" in names
    schema = orjson.loads((tmp_path / "schemas" / "lead.stage_changed.v2.json").read_bytes())
    assert schema["$id"] == "urn:leadledger:schema:lead.stage_changed:v2"
    assert schema["properties"]["type"] == {"const": "lead.stage_changed", "type": "string"}
    assert set(schema["$defs"]["data"]["required"]) == {"from_stage", "to_stage"}


def test_an_exported_schema_describes_what_the_codec_emits(tmp_path: Path) -> None:
    runner.invoke(app, ["schema", "export", str(tmp_path)])
    schema = orjson.loads((tmp_path / "lead.stage_changed.v2.json").read_bytes())
    emitted = to_obj(moved(LEAD, at(0), "lead", "mql"))

    assert set(emitted) <= set(schema["properties"])
    assert set(schema["required"]) <= set(emitted)


def test_funnel_check_prints_the_packaged_funnel() -> None:
    result = runner.invoke(app, ["funnel", "check"])

    assert result.exit_code == 0, result.output
    assert "opportunity" in result.output


def test_funnel_check_names_the_bad_stage_of_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "funnel.yaml"
    bad.write_text(
        "version: 1\nmain_path: [lead, mql]\nstages:\n"
        "  lead: {team: marketing, next: [mqll]}\n  mql: {team: marketing, next: []}\n"
        "initial_stages: [lead]\nhandoff_stage: mql\ndisqualification_reasons: [spam]\n"
    )
    result = runner.invoke(app, ["funnel", "check", str(bad)])

    assert result.exit_code == 1
    assert "mqll" in result.output
