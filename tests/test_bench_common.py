"""The benchmarks' one JSON tail (bench/common.py): the result on stdout and, with --json-out, the
same text in the file (folders made); exercised on its own and through a real bench script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402  (bench/common.py)


def test_emit_json_prints_and_writes_the_same_text(tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "r.json"
    common.emit_json({"fps": np.float32(24.5), "n": 3}, out, default=lambda o: o.item())
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"fps": 24.5, "n": 3}
    assert out.read_text(encoding="utf-8") == printed  # one text, a final newline in both
    common.emit_json({"n": 1})  # no path: stdout only
    assert json.loads(capsys.readouterr().out) == {"n": 1}
    assert common.save_json({"a": [1]}, None, indent=2) == '{\n  "a": [\n    1\n  ]\n}'


def test_a_bench_script_writes_its_json_out(tmp_path):
    dest = tmp_path / "results" / "triplog.json"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "triplog.py"), "--n", "30", "--json-out", str(dest)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert dest.read_text(encoding="utf-8") == res.stdout
    assert json.loads(res.stdout)["bench"] == "triplog"
