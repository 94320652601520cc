"""Rule sources -> records -> chunks that fit the embedder's window, each keeping its rule id."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vehicle_assist import config, paths
from vehicle_assist.config import KnowledgeSettings, StrictModel
from vehicle_assist.knowledge import KnowledgeError

REQUIRED_FIELDS = ("id", "section", "title", "text")


class SourceSpec(StrictModel):
    """One catalogue entry of knowledge/sources.yaml."""

    id: str
    jurisdiction: str
    title: str
    publisher: str = ""
    licence: str
    licence_url: str = ""
    attribution: str
    upstream: str = ""
    format: str = "jsonl"
    files: list[str]


class Catalogue(StrictModel):
    """knowledge/sources.yaml."""

    sources: list[SourceSpec]


@dataclass(frozen=True)
class Record:
    """One citable unit of a source (a rule, a table, an annex part)."""

    id: str
    section: str
    title: str
    text: str
    kind: str
    source: str


@dataclass(frozen=True)
class Chunk:
    """A piece of a record small enough to embed whole; ``rule_id`` is the record's citation id."""

    rule_id: str
    part: int
    section: str
    title: str
    kind: str
    text: str
    source: str

    @property
    def embed_text(self) -> str:
        """What is embedded and indexed: section and title give a sub-chunk its context."""
        head = self.title if self.title and not self.text.startswith(self.title) else ""
        section = self.section if self.section != self.title else ""
        return ". ".join(p for p in (section, head, linearize_tables(self.text)) if p)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def linearize_tables(text: str) -> str:
    """Pipe tables as sentences ("Cars: Motorways 70 (112); ...") for embedding; other lines kept."""
    if "|" not in text:
        return text
    out: list[str] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            header = None
            out.append(line)
            continue
        cells = _cells(line)
        if all(set(c) <= set("-: ") for c in cells):
            continue
        if header is None:
            header = cells
            continue
        pairs = [f"{h} {c}".strip() for h, c in zip(header[1:], cells[1:]) if c and c != "-"]
        out.append(f"{cells[0]}: " + "; ".join(pairs) if pairs else cells[0])
    return "\n".join(out)


def load_catalogue(settings: KnowledgeSettings) -> list[SourceSpec]:
    """The active sources of the catalogue (``settings.jurisdictions``); unknown ids are errors."""
    path = paths.resolve(settings.sources)
    cat = config.load(path, Catalogue)
    by_id = {s.id: s for s in cat.sources}
    unknown = [j for j in settings.jurisdictions if j not in by_id]
    if unknown:
        raise KnowledgeError("unknown-jurisdiction", f"{unknown} not in {path}; known: {sorted(by_id)}")
    return [by_id[j] for j in settings.jurisdictions]


def source_files(spec: SourceSpec) -> list[Path]:
    """Where a source's files live once fetched (knowledge/sources/ by default)."""
    from vehicle_assist import fetch

    out = []
    for name in spec.files:
        try:
            out.append(fetch.data_path("knowledge", name))
        except KeyError:
            out.append(paths.knowledge() / "sources" / name)
    return out


def read_records(spec: SourceSpec) -> list[Record]:
    """Read every record of one source; a missing or corrupt file raises KnowledgeError."""
    records: list[Record] = []
    for path in source_files(spec):
        if not path.is_file():
            raise KnowledgeError("source-missing", f"{path} not found: run `vehicle-assist fetch knowledge`")
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise KnowledgeError("source-corrupt", f"{path}:{lineno}: not JSON ({err.msg})") from err
            missing = [f for f in REQUIRED_FIELDS if not isinstance(data.get(f), str)]
            if missing:
                raise KnowledgeError("source-corrupt", f"{path}:{lineno}: missing text field(s) {missing}")
            records.append(Record(data["id"], data["section"], data["title"], data["text"].strip(),
                                  data.get("kind", "rule"), spec.id))
    ids = [r.id for r in records]
    if len(ids) != len(set(ids)):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise KnowledgeError("source-corrupt", f"source {spec.id}: duplicate ids {dupes[:5]}")
    return records


_SENTENCE = re.compile(r"(?<=[.;:!?])\s+(?=[A-Z(‘'\"-])")


def _units(text: str) -> list[str]:
    """Split a record's text into atomic units: whole tables, lines, and sentences of long lines."""
    units: list[str] = []
    table: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        if table:
            units.append("\n".join(table))
            table = []
        if line.strip():
            units.append(line)
    if table:
        units.append("\n".join(table))
    return units


def _is_table(unit: str) -> bool:
    return unit.lstrip().startswith("|")


def chunk_record(record: Record, count_tokens: Callable[[str], int], max_tokens: int = 256,
                 overlap: int = 1) -> list[Chunk]:
    """Split one record into chunks of at most ``max_tokens`` (tables are never split)."""
    whole = Chunk(record.id, 0, record.section, record.title, record.kind, record.text, record.source)
    if count_tokens(whole.embed_text) <= max_tokens:
        return [whole]
    budget = max_tokens - count_tokens(f"{record.section}. {record.title}. ")
    pieces: list[str] = []
    for unit in _units(record.text):
        if _is_table(unit) or count_tokens(unit) <= budget:
            pieces.append(unit)
        else:
            pieces.extend(s for s in _SENTENCE.split(unit) if s.strip())
    chunks: list[list[str]] = []
    current: list[str] = []
    for piece in pieces:
        fits = count_tokens("\n".join(current + [piece])) <= budget
        if _is_table(piece):  # a table is never split: it joins the current chunk or stands alone
            if current and not fits:
                chunks.append(current)
                current = []
            current.append(piece)
            continue
        if current and not fits:
            chunks.append(current)
            carry = [p for p in current[-overlap:] if not _is_table(p)] if overlap else []
            current = carry + [piece] if count_tokens("\n".join(carry + [piece])) <= budget else [piece]
        else:
            current.append(piece)
    if current:
        chunks.append(current)
    return [Chunk(record.id, i, record.section, record.title, record.kind, "\n".join(c), record.source)
            for i, c in enumerate(chunks)]


def build_chunks(records: list[Record], count_tokens: Callable[[str], int], max_tokens: int = 256,
                 overlap: int = 1) -> list[Chunk]:
    """Chunk every record, in source order."""
    return [c for r in records for c in chunk_record(r, count_tokens, max_tokens, overlap)]

