"""Config loading: malformed files and unknown keys fail with the file, the key and what was expected."""

from __future__ import annotations

import pytest

from vehicle_assist import config, fetch, models
from vehicle_assist.config import ConfigError


def test_every_shipped_config_loads(va_home):
    assert config.load_app().runtime is not None
    assert set(models.load_config().roles) == set(models.ROLES)
    assert fetch.catalogue().groups["models"].files


def test_malformed_yaml_names_file_and_position(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("roles:\n  detector: {kind: ultralytics\n  asr: [\n")
    with pytest.raises(ConfigError) as err:
        config.load(bad, models.ModelsConfig)
    assert str(bad) in str(err.value)
    assert "line" in err.value.key
    assert "valid YAML" in err.value.expected


def test_unknown_key_is_named_with_the_allowed_ones(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("roles:\n  slm:\n    kind: llama-cpp\n    pathh: /x.gguf\n")
    with pytest.raises(ConfigError) as err:
        config.load(bad, models.ModelsConfig)
    assert err.value.key == "roles.slm.pathh"
    assert "unknown key" in err.value.expected and "path" in err.value.expected


def test_wrong_type_says_what_was_expected(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("roles:\n  slm:\n    kind: llama-cpp\n    required: sometimes\n")
    with pytest.raises(ConfigError) as err:
        config.load(bad, models.ModelsConfig)
    assert err.value.key == "roles.slm.required"
    assert "bool" in err.value.expected and "sometimes" in err.value.expected


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="the file to exist"):
        config.load(tmp_path / "nope.yaml", models.ModelsConfig)


def test_env_override_reaches_a_section(monkeypatch):
    monkeypatch.setenv("VA_RUNTIME__TRIP_LOG_DIR", "/tmp/trips")
    assert config.env_overrides()["runtime"]["trip_log_dir"] == "/tmp/trips"


def test_va_home_moves_every_config(va_home):
    (va_home / "configs" / "models.yaml").write_text("roles: {}\n")
    with pytest.raises(ConfigError, match="entries for"):
        models.load_config()


def test_a_command_validates_only_the_sections_it_runs(tmp_path, monkeypatch):
    cfg = tmp_path / "va.yaml"
    cfg.write_text("perception:\n  rate_hz: 12\nruntime:\n  threads: {detector: 3}\n  stale_check_s: -1\n"
                   "advisory:\n  route: nonsense\n")
    monkeypatch.setenv("VA_PERCEPTION__CONF", "0.4")
    app = config.load_app(cfg, only=("perception", "runtime.threads"))
    assert (app.perception.rate_hz, app.perception.conf, app.runtime.threads.detector) == (12, 0.4, 3)
    assert app.advisory.route == config.AdvisorySettings().route  # the broken sections stay at their defaults
    with pytest.raises(ConfigError) as err:
        config.load_app(cfg)  # the whole file is still checked by whoever loads all of it
    assert err.value.key in ("runtime.stale_check_s", "advisory.route")
    with pytest.raises(ConfigError):
        config.load_app(cfg, only=("runtime",))


def test_error_from_an_environment_variable_names_it(monkeypatch):
    monkeypatch.setenv("VA_RUNTIME__FSYNC", "sometimes")
    with pytest.raises(ConfigError) as err:
        config.load_app()
    assert err.value.file.startswith("environment variable VA_RUNTIME__FSYNC='sometimes' (overriding ")
    assert err.value.key == "runtime.fsync"
    monkeypatch.delenv("VA_RUNTIME__FSYNC")
    monkeypatch.setenv("VA_PERCEPTION__CONF", "high")  # a section validated alone names it too
    with pytest.raises(ConfigError) as err:
        config.load_app(only=("perception",))
    assert "VA_PERCEPTION__CONF='high'" in str(err.value)


def test_error_in_the_file_does_not_blame_an_unrelated_variable(va_home, monkeypatch):
    monkeypatch.setenv("VA_RUNTIME__FSYNC", "true")
    path = va_home / "configs" / "default.yaml"
    path.write_text(path.read_text().replace("  route: extractive", "  route: 7"))
    with pytest.raises(ConfigError) as err:
        config.load_app()
    assert err.value.file == str(path) and err.value.key == "advisory.route"


def test_env_value_that_is_not_yaml_is_taken_as_text(monkeypatch):
    monkeypatch.setenv("VA_RUNTIME__TRIP_LOG_DIR", "runs/[x")
    assert config.env_overrides()["runtime"]["trip_log_dir"] == "runs/[x"
    assert config.load_app().runtime.trip_log_dir == "runs/[x"
