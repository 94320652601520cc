"""Shared fixtures: paths to fetched real data. A missing data file fails the test (never skips):
run ``vehicle-assist fetch`` (``./quickstart`` does) to bring it in."""

from __future__ import annotations

from pathlib import Path

import pytest

from vehicle_assist import fetch, paths


def data_file(group: str, name: str) -> Path:
    """A fetched data file from configs/data.yaml; fails the test if it is not there."""
    p = fetch.data_path(group, name)
    if not p.is_file():
        pytest.fail(f"data file {group}/{name} missing at {p}: run `vehicle-assist fetch {group}`")
    return p


@pytest.fixture(scope="module")
def leeds():
    """The Leeds city centre OSM extract, indexed (route tests)."""
    from vehicle_assist.route.map import load_map

    return load_map(data_file("maps", "leeds_city_centre.osm"))


@pytest.fixture(scope="module")
def manchester():
    """The Manchester Kingsway OSM extract, indexed (route tests)."""
    from vehicle_assist.route.map import load_map

    return load_map(data_file("maps", "manchester_kingsway.osm"))


def code_passages() -> dict:
    """The real Highway Code passages (fetched data), by id."""
    import json

    from vehicle_assist.messages import Passage

    out = {}
    for name in ("uk_highway_code.jsonl", "uk_highway_code_figures.jsonl"):
        for line in data_file("knowledge", name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            out[r["id"]] = Passage(r["id"], r["section"], r["title"], r["text"])
    return out


@pytest.fixture
def data():
    """``data("frames", "highway_test1.jpg")`` -> Path of a real fetched file."""
    return data_file


@pytest.fixture
def va_home(tmp_path, monkeypatch) -> Path:
    """A throwaway VA_HOME holding a copy of the real configs, for tests that edit configs."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(paths.configs(), home / "configs")
    monkeypatch.setenv("VA_HOME", str(home))
    return home
