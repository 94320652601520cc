"""The install is pinned: every Python dependency the project declares has a version in constraints.txt."""

from __future__ import annotations

import re
import tomllib

from vehicle_assist import paths


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; @]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (paths.home() / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line without an exact version: {line!r}"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_every_declared_dependency_is_pinned():
    project = tomllib.loads((paths.home() / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared += extra
    pins = _pins()
    missing = sorted({_name(r) for r in declared} - set(pins))
    assert not missing, f"not pinned in constraints.txt (run ./quickstart lock): {missing}"


def test_torch_pins_match_the_local_wheels():
    pins = _pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_quickstart_installs_with_the_constraints():
    text = (paths.home() / "quickstart").read_text(encoding="utf-8")
    installs = [l for l in text.splitlines() if "pip install" in l and not l.lstrip().startswith("#")]
    assert installs and all("-c constraints.txt" in l for l in installs), installs
