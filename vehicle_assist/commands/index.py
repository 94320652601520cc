"""``vehicle-assist index``: build (or check) the Highway Code retrieval index."""

from __future__ import annotations

import typer

from vehicle_assist.commands._out import console, emit, fail, note, progress


def register(app: typer.Typer) -> None:
    @app.command(short_help="Build the Highway Code rule index, or check it is current.")
    def index(
        rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if the stored index matches the sources and model."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Build the rule index (FAISS + BM25) under knowledge/index/, or load it if it is current.

        The index is rebuilt automatically whenever a source file or the embedding model changes
        (a content hash is stored with it).
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

        emit(summary, as_json, human)
