"""``vehicle-assist ask`` through the advisory lane: the extended record and spoken output (real
retriever, real TTS into a WAV file)."""

from __future__ import annotations

import json
import wave

import pytest
from typer.testing import CliRunner

from vehicle_assist.cli import app

runner = CliRunner()
BASE_FIELDS = {"question", "passages", "answerable", "answer", "cited", "route", "timings"}


def records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_ask_json_extends_the_knowledge_record(tmp_path):
    qfile = tmp_path / "q.txt"
    qfile.write_text("how much room should I give a cyclist when I overtake\nwhat's the capital of france\n",
                     encoding="utf-8")
    wav = tmp_path / "ask.wav"
    result = runner.invoke(app, ["ask", "--questions", str(qfile), "--json", "--speak", "--audio-out", f"wav:{wav}"])
    assert result.exit_code == 0, result.output
    cyclist, france = records(result.stdout)
    assert BASE_FIELDS <= set(cyclist) and {"refused", "fallback", "grounded"} <= set(cyclist)
    assert cyclist["route"] == "extractive" and not cyclist["refused"] and cyclist["grounded"]
    assert "1.5 metres" in cyclist["answer"] and cyclist["cited"] == ["163"]
    assert set(cyclist["cited"]) <= {p["id"] for p in cyclist["passages"]}
    assert cyclist["timings"]["first_audio_ms"] > 0 and "embed_ms" in cyclist["timings"]
    assert france["refused"] and france["route"] == "refusal" and france["cited"] == []
    with wave.open(str(wav), "rb") as w:
        assert w.getnframes() > w.getframerate()  # more than a second of real speech


@pytest.mark.slow
def test_ask_readable_output_shows_route_and_citations():
    result = runner.invoke(app, ["ask", "--scene", "label=bicycle,hazard=cyclist_ahead,speed_mps=13"])
    assert result.exit_code == 0, result.output
    assert "route extractive" in result.output and "cited Rule" in result.output


def test_ask_rejects_an_unknown_route():
    result = runner.invoke(app, ["ask", "what gap should I leave", "--route", "magic"])
    assert result.exit_code == 2 and "--route" in result.output
