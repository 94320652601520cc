"""``vehicle-assist ask``: look a question (and/or a scene) up in the Highway Code.

For now every question is answered with the retrieved rules only (``--retrieve-only``); spoken
answers arrive with the advisory lane, which extends the record built by
``knowledge.record.ask_record`` (never changes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vehicle_assist.commands._out import console, emit, emit_line, err_console, fail, progress

SCENE_FIELDS = {"label": str, "distance_m": float, "speed_mps": float, "road_type": str, "weather": str, "hazard": str}


def parse_scene(spec: str):
    """``"label=bicycle,hazard=cyclist_ahead,speed_mps=13"`` -> Scene; raises ValueError on bad input."""
    from vehicle_assist.messages import Scene

    values: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in SCENE_FIELDS:
            raise ValueError(f"bad scene item {part!r}: use key=value with keys {', '.join(SCENE_FIELDS)}")
        try:
            values[key] = SCENE_FIELDS[key](value.strip())
        except ValueError:
            raise ValueError(f"scene {key} must be a number, got {value!r}") from None
    if not values:
        raise ValueError("empty scene: give at least one key=value")
    return Scene(**values)


def read_questions(path: Path) -> list[str]:
    """One question per non-empty line."""
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read questions from {path}: {err}") from err


def render(record: dict, attribution: str, reason: str = "") -> None:
    """Readable form of one ask record."""
    console.print(f"[bold]{record['question']}[/bold]")
    if record["answerable"]:
        console.print("answerable from the Highway Code; rules found:")
    else:
        console.print(f"[yellow]the Highway Code does not seem to answer this[/yellow] ({reason}); nearest rules:")
    for p in record["passages"]:
        label = f"Rule {p['id']}" if p["id"][:1].isdigit() or p["id"][:1] == "H" else p["id"]
        snippet = " ".join(p["text"].split())
        console.print(f"  [cyan]{label}[/cyan] {p['title']} [dim]({p['section']}; score {p['score']:.4f})[/dim]")
        console.print(f"    {snippet[:220]}{'…' if len(snippet) > 220 else ''}")
    t = record["timings"]
    console.print(f"[dim]retrieval {t.get('total_ms', 0):.1f} ms (embed {t.get('embed_ms', 0):.1f} ms)[/dim]")


def register(app: typer.Typer) -> None:
    @app.command()
    def ask(
        question: Optional[str] = typer.Argument(None, help="The question, as spoken (omit with --questions or --scene)."),
        retrieve_only: bool = typer.Option(False, "--retrieve-only", help="Only retrieve the rules (no spoken answer)."),
        questions: Optional[Path] = typer.Option(None, "--questions", help="File with one question per line; one record per line out."),
        scene: Optional[str] = typer.Option(None, "--scene", help="A situation, e.g. 'label=bicycle,hazard=cyclist_ahead,road_type=rural,speed_mps=13'."),
        k: Optional[int] = typer.Option(None, "-k", min=1, max=20, help="Passages to return (default: knowledge.k)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON: one record per question (JSON Lines)."),
    ) -> None:
        """Find the Highway Code rules for a question and/or a scene, with citations.

        Output record (JSON): question, passages [{id, score, section, title, text}], answerable,
        answer, cited, route, timings.
        """
        from vehicle_assist.config import load_app
        from vehicle_assist.knowledge import KnowledgeError
        from vehicle_assist.knowledge.record import ask_record
        from vehicle_assist.knowledge.retrieve import Retriever

        try:
            the_scene = parse_scene(scene) if scene else None
            texts = read_questions(questions) if questions else []
        except ValueError as err:
            fail(str(err), 2)
        if question:
            texts.insert(0, question)
        if not texts and the_scene is None:
            fail("give a question, --questions FILE or --scene", 2)
        if not retrieve_only:
            err_console.print("[dim]note: spoken answers arrive with the advisory lane; showing the retrieved rules "
                              "(as --retrieve-only).[/dim]")
        try:
            retriever = Retriever.load(load_app().knowledge, progress=not as_json)
        except KnowledgeError as err:
            fail(str(err), 2)
        texts = texts or [""]
        with progress("asking", len(texts), enabled=len(texts) > 1 and as_json) as advance:
            for text in texts:
                retrieval = retriever.search(text, scene=the_scene, k=k)
                record = ask_record(retrieval)
                if as_json:
                    emit_line(record)
                else:
                    render(record, retriever.attribution, retrieval.reason)
                advance()
        if not as_json:
            console.print(f"[dim]{retriever.attribution}[/dim]")
