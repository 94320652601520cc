"""``vehicle-assist ask`` and ``index``: scene parsing, JSON records, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vehicle_assist.cli import app
from vehicle_assist.commands.ask import parse_scene
from vehicle_assist.messages import Scene

runner = CliRunner()


def test_parse_scene():
    assert parse_scene("label=bicycle, hazard=cyclist_ahead,speed_mps=13") == Scene(
        label="bicycle", hazard="cyclist_ahead", speed_mps=13.0)
    for bad in ("colour=red", "speed_mps=fast", "label", ""):
        with pytest.raises(ValueError):
            parse_scene(bad)


def test_bad_input_exits_with_a_clear_error(tmp_path):
    result = runner.invoke(app, ["ask", "--scene", "colour=red", "--retrieve-only"])
    assert result.exit_code == 2 and "key=value" in result.output
    result = runner.invoke(app, ["ask", "--questions", str(tmp_path / "none.txt"), "--retrieve-only"])
    assert result.exit_code == 2 and "cannot read" in result.output
    result = runner.invoke(app, ["ask", "--retrieve-only"])
    assert result.exit_code == 2


@pytest.mark.slow
def test_questions_file_gives_one_record_per_line(tmp_path):
    qfile = tmp_path / "q.txt"
    qfile.write_text("when can I use my fog lights\n\nhow much does an MOT cost\n", encoding="utf-8")
    result = runner.invoke(app, ["ask", "--questions", str(qfile), "--retrieve-only", "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["question"] for r in records] == ["when can I use my fog lights", "how much does an MOT cost"]
    assert records[0]["answerable"] and not records[1]["answerable"]
    assert {"236", "226"} & {p["id"] for p in records[0]["passages"]} and len(records[0]["passages"]) == 3
    human = runner.invoke(app, ["ask", "when can I use my fog lights"])
    assert human.exit_code == 0 and "Open Government Licence" in human.output
    assert "advisory lane" in human.output  # without --retrieve-only it says answering comes later


@pytest.mark.slow
def test_index_command_reports_the_index():
    result = runner.invoke(app, ["index", "--no-voice", "--json"])  # the voice warm-up: tests/test_speech_tts_warm.py
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["chunks"] > summary["records"] - 30 and summary["sources"] == ["uk-gb"]
    assert summary["sub_chunked_records"] >= 20 and len(summary["fingerprint"]) == 64
    assert summary["encoder"] == "onnx" and summary["answerability"] == "model"
    assert "Open Government Licence" in summary["attribution"]
