"""``vehicle-assist ask``: look a question (and/or a scene) up in the Highway Code.

Without ``--retrieve-only`` the advisory lane answers (route, cited rules, refusal) and, with
``--speak``, says it through the TTS and the audio arbiter; its record extends the one built by
``knowledge.record.ask_record`` (answer, cited, route, refused, timings; never changes a field).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from vehicle_assist.commands._out import console, emit_line, fail, note, progress, warn

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
    console.print(f"[bold]{escape(record['question'])}[/bold]")
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
    @app.command(short_help="Answer a question from the Highway Code, citing its rules.")
    def ask(
        question: Optional[str] = typer.Argument(None, metavar="QUESTION", help="The question, as spoken (omit with --questions or --scene)."),
        retrieve_only: bool = typer.Option(False, "--retrieve-only", help="Only retrieve the rules (no spoken answer)."),
        questions: Optional[Path] = typer.Option(None, "--questions", metavar="FILE", help="File with one question per line; one record per line out."),
        scene: Optional[str] = typer.Option(None, "--scene", metavar="KEY=VALUE,...", help="A situation as key=value pairs, e.g. label=bicycle,hazard=cyclist_ahead,speed_mps=13 (keys: label, distance_m, speed_mps, road_type, weather, hazard)."),
        k: Optional[int] = typer.Option(None, "-k", metavar="N", min=1, max=20, help="Passages to return (default: knowledge.k)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON: one record per question (JSON Lines)."),
        speak: bool = typer.Option(False, "--speak", help="Also speak the answer (TTS through the audio arbiter)."),
        audio_out: str = typer.Option("device", "--audio-out", metavar="SINK", help="Where --speak goes: device, wav:PATH or null "
                                      "(falls back to wav:$VA_HOME/out/ask.wav when there is no audio device)."),
        route: Optional[str] = typer.Option(None, "--route", metavar="ROUTE", help="Force the local route: extractive or slm "
                                            "(default: advisory.route in the config)."),
    ) -> None:
        """Find the Highway Code rules for a question and/or a scene, with citations.

        Output record (JSON): question, passages [{id, score, section, title, text}], answerable,
        answer, cited, route, timings; answered records add refused, fallback and grounded.
        """
        from vehicle_assist.config import load_app
        from vehicle_assist.knowledge import KnowledgeError
        from vehicle_assist.knowledge.record import ask_record
        from vehicle_assist.knowledge.retrieve import Retriever

        try:
            the_scene = parse_scene(scene) if scene else None
            texts = read_questions(questions) if questions else []
        except ValueError as err:
            fail(err, 2, code="bad-input")
        if question:
            texts.insert(0, question)
        if not texts and the_scene is None:
            fail("give a question, --questions FILE or --scene", 2, code="usage")
        if route is not None and route not in ("extractive", "slm"):
            fail(f"--route must be extractive or slm, got {route!r}", 2, code="usage")
        try:
            app = load_app()
            retriever = Retriever.load(app.knowledge, progress=None if as_json else progress,
                                       threads=app.runtime.threads.embedder)
        except KnowledgeError as err:
            fail(err, 2)
        texts = texts or [""]
        if not retrieve_only:
            _answer(texts, the_scene, retriever, as_json, speak, audio_out, route, k)
            return
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


def _answer(texts: list[str], scene, retriever, as_json: bool, speak: bool, audio_out: str, route: str | None,
            k: int | None) -> None:
    """Answer each question through the advisory lane; print (and speak) the extended records."""
    import asyncio

    from vehicle_assist import clock, paths
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.audio_out import AudioOutError
    from vehicle_assist.config import load_app

    cfg = load_app()
    sink = None
    if speak:
        sink = audio_out
        if audio_out.startswith("device"):
            try:
                from vehicle_assist.audio_out import open_sink

                open_sink(audio_out).close()
            except (AudioOutError, OSError, ImportError) as err:
                sink = f"wav:{paths.home() / 'out' / 'ask.wav'}"
                note(f"no audio device ({getattr(err, 'message', err)}); writing speech to {sink[4:]}")
    try:
        lane = lanes.build(cfg, route=route, sink=sink, retriever=retriever)
    except AudioOutError as err:
        fail(err, 2)
    for why in lane.notes:
        warn(why)
    lane.run.k = k or cfg.knowledge.k
    wall = clock.WallClock()
    try:
        with progress("answering", len(texts), enabled=len(texts) > 1 and as_json) as advance:
            for text in texts:
                report = asyncio.run(lane.run.execute_report(text or None, scene, wall.now_ns()))
                record = lanes.ask_record(report)
                if as_json:
                    emit_line(record)
                else:
                    _render_answer(record, retriever.attribution, getattr(report.retrieval, "reason", ""))
                advance()
    finally:
        lane.close()
    if not as_json:
        if sink and sink.startswith("wav:"):
            console.print(f"[dim]speech written to {escape(sink[4:])}[/dim]")
        console.print(f"[dim]{retriever.attribution}[/dim]")


def _render_answer(record: dict, attribution: str, reason: str) -> None:
    """Readable form of an answered ask record: the answer, its route and citations, then the rules."""
    console.print(f"[bold]{escape(record['question'] or '(scene)')}[/bold]")
    style = "yellow" if record["refused"] else "green"
    console.print(f"[{style}]{escape(record['answer'] or '')}[/{style}]")
    cited = ", ".join(f"Rule {c}" if c[:1].isdigit() or c[:1] == "H" else c for c in record["cited"]) or "none"
    t = record["timings"]
    console.print(f"[dim]answered by the advisory lane: route {record['route']}; cited {cited}"
                  + (f"; fallback: {record['fallback']}" if record.get("fallback") else "")
                  + f"; first audio {t.get('first_audio_ms', 0):.0f} ms, run {t.get('run_ms', 0):.0f} ms[/dim]")
    for p in record["passages"][:3]:
        mark = "*" if p["id"] in record["cited"] else " "
        console.print(f" {mark}[cyan]{p['id']}[/cyan] {p['title']} [dim]({p['section']}; score {p['score']:.4f})[/dim]")
