"""``vehicle-assist index``: build (or check) the Highway Code retrieval index."""

from __future__ import annotations

import typer

from vehicle_assist.commands._out import console, emit, fail, note, progress


def register(app: typer.Typer) -> None:
    @app.command(short_help="Build the Highway Code rule index, or check it is current.")
    def index(
        rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if the stored index matches the sources and model."),
        no_voice: bool = typer.Option(False, "--no-voice", help="Skip pre-rendering the answers' first phrases in the "
                                      "Piper voice (minutes on first run; later runs render only what changed)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Build the rule index (FAISS + BM25) under knowledge/index/, or load it if it is current.

        The index is rebuilt automatically whenever a source file or the embedding model changes
        (a content hash is stored with it). Then, with the Piper voice and its disk cache
        (speech.tts.cache_mb), the first phrase of every answer the car can give from the Code,
        of route advisories and of command replies is rendered into the cache, so an answer's
        first audio comes from disk (only what is not cached yet is rendered; --no-voice skips it).
        """
        from vehicle_assist.config import load_app
        from vehicle_assist.knowledge import KnowledgeError
        from vehicle_assist.knowledge.index import index_dir
        from vehicle_assist.knowledge.retrieve import Retriever

        app = load_app()
        settings = app.knowledge
        notes: list[str] = []
        try:
            retriever = Retriever.load(settings, progress=None if as_json else progress, rebuild=rebuild, on_event=notes.append,
                                       threads=app.runtime.threads.embedder)
        except KnowledgeError as err:
            fail(err, 2)
        idx = retriever.index
        summary = {
            "index_dir": str(index_dir(settings)),
            "built": idx.built,
            "build_s": round(idx.build_s, 3) if idx.built else idx.meta.get("build_s"),
            "chunks": len(idx.chunks),
            "records": len(idx.records),
            "sub_chunked_records": len({c.rule_id for c in idx.chunks if c.part > 0}),
            "sources": [s.id for s in idx.sources],
            "fingerprint": idx.fingerprint,
            "encoder": retriever.encoder.name,
            "answerability": "model" if retriever.answer_model is not None else "threshold",
            "notes": notes,
            "attribution": retriever.attribution,
            "voice": None if no_voice else _warm(app, retriever, as_json, notes),
        }

        def human(s: dict) -> None:
            for line in s["notes"]:
                note(line)
            what = f"built in {s['build_s']:.1f} s" if s["built"] else "up to date (loaded)"
            console.print(f"index {what}: {s['chunks']} passages from {s['records']} records "
                          f"({s['sub_chunked_records']} long records sub-chunked), sources {', '.join(s['sources'])}")
            console.print(f"at {s['index_dir']}  hash {s['fingerprint'][:12]}  encoder {s['encoder']}  "
                          f"answerability {s['answerability']}")
            console.print(f"[dim]{s['attribution']}[/dim]")
            v = s["voice"]
            if v and not v.get("note", "").startswith(("no disk", "the ")):
                console.print(f"voice: {v['rendered'] + v['cached']} of {v['phrases']} answer openings in the TTS cache ({v['rendered']} rendered in "
                              f"{v['render_s']:.0f} s, {v['cached']} already there); {v['pinned_bytes'] / 1e6:.0f} MB of "
                              f"{v['max_bytes'] / 1e6:.0f} MB (speech.tts.cache_mb)")
            if v and v.get("note"):
                note(f"voice: {v['note']}")

        emit(summary, as_json, human)


def _warm(app, retriever, as_json: bool, notes: list[str]) -> dict | None:
    """Pre-render the answer openings into the TTS cache (vehicle_assist.speech.warm); None: no voice."""
    from vehicle_assist.advisory.lane import AdvisoryParts
    from vehicle_assist.speech import tts, warm

    if app.speech.tts.engine != "piper":
        return {"note": "the pyttsx3 voice renders in ~20 ms: nothing to pre-render", "phrases": 0}
    renderer = tts.load_renderer(app.speech.tts.engine)
    parts = AdvisoryParts(app.advisory, retriever)  # the openings need the rules and the answer settings only
    report = warm.warm(app, renderer, parts, progress=None if as_json else progress)
    return report.as_dict()
