"""What the voice says for what is written: a TTS text normaliser (pure).

:func:`speakable` turns an answer's written text into the words a person would say: units after a
number ("48 km/h" -> "48 kilometres per hour", "1.5 m" -> "1.5 metres"; "mph" stays spelled out, see
configs/spoken.yaml), the metric conversion in brackets after a mph figure dropped ("70 mph (112 km/h)" ->
"70 mph"), abbreviations ("e.g.",
"i.e.", "MOT"), a slash ("green/yellow" -> "green or yellow", "80 mg/100 ml" -> "... per 100 ...")
and clock times ("11.30 pm" -> "11:30 pm", "7.00 am" -> "7 am"). The table is data, ``configs/spoken.yaml``. Both TTS engines apply it to the text they render (and key their caches by
its result); what is logged, displayed, cited or validated keeps the written text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_NUMBER = r"(?<![\w.])(\d+(?:[.,]\d+)*)"


class SpokenTable:
    """The normaliser's data: ``units`` (unit -> (plural, singular), said after a number), ``words``
    (written word -> spoken words, anywhere) and ``drop_conversion``; its patterns compiled once."""

    def __init__(self, units: dict[str, tuple[str, str]], words: dict[str, str], drop_conversion: bool = True,
                 slash: dict[str, str] | None = None) -> None:
        self.units, self.words, self.drop_conversion, self.slash = units, words, drop_conversion, dict(slash or {})
        alt = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
        self.unit_re = re.compile(_NUMBER + r"\s?(" + alt + r")(?![\w/])") if alt else None
        keys = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self.word_re = re.compile(r"(?<![\w.])(" + keys + r")(?!\w)") if keys else None
        self.conv_re = (re.compile(r"(\d+(?:\.\d+)?\s?mph)\s*\(\s*\d+(?:\.\d+)?\s?(?:km/h|kph)\s*\)")
                        if drop_conversion else None)

    @classmethod
    def from_dict(cls, doc: dict) -> "SpokenTable":
        units = {}
        for unit, said in (doc.get("units") or {}).items():
            plural, single = (said, said) if isinstance(said, str) else (said[0], said[-1])
            units[str(unit)] = (str(plural), str(single))
        return cls(units, {str(k): str(v) for k, v in (doc.get("words") or {}).items()},
                   bool(doc.get("drop_conversion", True)), {str(k): str(v) for k, v in (doc.get("slash") or {}).items()})


_SLASH_NUMBER = re.compile(r"(?<=[A-Za-z])/(?=\d)")
_SLASH_WORDS = re.compile(r"(?<=[A-Za-z]{2})/(?=[A-Za-z]{2})")
_TIME = re.compile(r"(?<![\w.])(\d{1,2})[.:](\d{2})\s?([ap])(m|\.m\.)(?!\w)", re.IGNORECASE)


def _time(m: re.Match) -> str:
    hour, minutes, ap = m.group(1), m.group(2), m.group(3).lower()
    rest = m.string[m.end():].lstrip()
    stop = "." if m.group(4).endswith(".") and (not rest or rest[0].isupper()) else ""
    return f"{hour}{'' if minutes == '00' else ':' + minutes} {ap}m{stop}"


def speakable(text: str, table: SpokenTable | None = None) -> str:
    """The words to say for ``text`` (see the module doc). Pure; text without anything in the
    table comes back unchanged (the alert phrases do)."""
    t = table or load_table()
    out = text
    if t.conv_re is not None:
        out = t.conv_re.sub(r"\1", out)
    out = _TIME.sub(_time, out)
    if t.unit_re is not None:
        def unit(m: re.Match) -> str:
            plural, single = t.units[m.group(2)]
            return f"{m.group(1)} {single if m.group(1) == '1' else plural}"

        out = t.unit_re.sub(unit, out)
    if t.word_re is not None:
        def word(m: re.Match) -> str:
            key, rest = m.group(1), m.string[m.end():].lstrip()
            # "... etc. Then" / "... etc." at the end: the abbreviation's stop also ended the sentence
            return t.words[key] + ("." if key.endswith(".") and (not rest or rest[0].isupper()) else "")

        out = t.word_re.sub(word, out)
    if t.slash:  # after units and words ("km/h", "and/or" are said by then): "green/yellow" -> "green or yellow", "mg/100 ml" -> "mg per 100 ml"
        out = _SLASH_NUMBER.sub(" " + t.slash.get("before_number", "per") + " ", out)
        out = _SLASH_WORDS.sub(" " + t.slash.get("between_words", "or") + " ", out)
    return out


@lru_cache(maxsize=4)
def _load(path: str) -> SpokenTable:
    import yaml

    return SpokenTable.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def load_table(path: Path | str | None = None) -> SpokenTable:
    """The table from ``configs/spoken.yaml`` (VA_HOME), read once; a missing file gives an empty table."""
    from vehicle_assist import paths

    p = Path(path) if path else paths.configs() / "spoken.yaml"
    if not p.is_file():
        return SpokenTable({}, {}, False)
    return _load(str(p))


__all__ = ["speakable", "SpokenTable", "load_table"]
