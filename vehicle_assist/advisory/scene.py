"""Scenes in words: parse a typed scene (``--scene``), describe one for a prompt, list its facts."""

from __future__ import annotations

import json
import re

from vehicle_assist.messages import Scene

MPS_PER_MPH = 0.44704
_KEYS = {
    "label": "label", "object": "label", "distance": "distance_m", "distance_m": "distance_m",
    "speed": "speed_mph", "speed_mph": "speed_mph", "speed_mps": "speed_mps", "road": "road_type",
    "road_type": "road_type", "weather": "weather", "hazard": "hazard",
}


class SceneError(ValueError):
    """A typed scene could not be understood."""


def parse_scene(text: str) -> Scene:
    """``'label=cyclist distance=12 speed=30 road=narrow weather=rain'`` (speed in mph; commas or spaces
    between pairs; Scene field names such as ``speed_mps`` work too), a JSON object
    of Scene fields, or free words (kept as ``hazard``) -> Scene."""
    text = text.strip()
    if not text:
        raise SceneError("empty scene")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SceneError(f"scene JSON is malformed: {err}") from err
        unknown = set(data) - set(Scene.__dataclass_fields__)
        if unknown:
            raise SceneError(f"unknown scene fields {sorted(unknown)}; expected {sorted(Scene.__dataclass_fields__)}")
        return Scene(**data)
    pairs = re.findall(r"(\w+)=(\"[^\"]*\"|[^\s,]+)", text)
    if not pairs:
        return Scene(hazard=text)
    fields: dict[str, object] = {}
    for key, value in pairs:
        name = _KEYS.get(key.lower())
        if name is None:
            raise SceneError(f"unknown scene key '{key}'; expected one of {sorted(_KEYS)}")
        value = value.strip('"')
        if name in ("distance_m", "speed_mph", "speed_mps"):
            try:
                num = float(value)
            except ValueError as err:
                raise SceneError(f"scene key '{key}' needs a number, got {value!r}") from err
            if name == "speed_mph":
                name, num = "speed_mps", num * MPS_PER_MPH
            fields[name] = num
        else:
            fields[name] = value.replace("_", " ")
    return Scene(**fields)  # type: ignore[arg-type]


def describe(scene: Scene | None) -> str:
    """A short description of the scene for a prompt or a query ('' when nothing is known)."""
    if scene is None:
        return ""
    parts = []
    if scene.label or scene.hazard:
        what = " ".join(p.replace("_", " ") for p in (scene.hazard, scene.label) if p)
        parts.append(what + (f" {scene.distance_m:.0f} metres ahead" if scene.distance_m is not None else " ahead"))
    if scene.speed_mps is not None:
        parts.append(f"driving at {scene.speed_mps / MPS_PER_MPH:.0f} mph")
    if scene.road_type:
        parts.append(f"{scene.road_type.replace('_', ' ')} road")
    if scene.weather:
        parts.append(f"weather: {scene.weather.replace('_', ' ')}")
    return "; ".join(parts)


def facts(scene: Scene | None) -> str:
    """The scene as text that supports numbers in an answer (distance, speed in mph and m/s)."""
    if scene is None:
        return ""
    out = [describe(scene)]
    if scene.speed_mps is not None:
        out.append(f"{scene.speed_mps:.0f} m/s")
    return " ".join(out)


def steers(question: str | None) -> bool:
    """Does the scene decide what is answered? Only without a real question (none, or too vague to
    say what it is about: "what now?"). A question is answered about what it asks; the scene then
    only breaks ties between sentences (in a car there is nearly always a car ahead)."""
    from vehicle_assist.advisory.text import terms

    return len(terms(question or "")) < 2
