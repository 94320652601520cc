"""``vehicle-assist doctor``: prove every model role works by a real tiny inference."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import typer
from rich.table import Table

from vehicle_assist import doctor as checks
from vehicle_assist import models
from vehicle_assist.commands._out import console, emit, progress


def register(app: typer.Typer) -> None:
    @app.command(short_help="Check every model role with a real tiny inference.")
    def doctor(
        roles: Optional[list[str]] = typer.Argument(None, metavar="ROLE", help=f"Roles to check (default: all of {', '.join(models.ROLES)})."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Check each model role on real data and print load time, inference time and peak memory.

        The detector must find a car on a dashcam frame, ASR transcribe a recorded utterance, the
        embedder embed, the SLM generate and the TTS render speech. Exits 1 when a required role fails.
        """
        chosen = tuple(roles or models.ROLES)
        unknown = set(chosen) - set(models.ROLES)
        if unknown:
            raise typer.BadParameter(f"unknown roles {sorted(unknown)}; known: {', '.join(models.ROLES)}")
        results = []
        with progress("checking models", len(chosen), enabled=not as_json) as advance:
            for role in chosen:
                results.extend(checks.run_all((role,)))
                advance()
        cfg = models.load_config()
        failed = [r.role for r in results if not r.ok and cfg.roles[r.role].required]
        report = {"ok": not failed, "failed": failed, "roles": [asdict(r) for r in results]}

        def human(rep: dict) -> None:
            table = Table(title="vehicle-assist doctor")
            for col in ("role", "status", "load ms", "infer ms", "peak MB"):
                table.add_column(col)
            table.add_column("detail", overflow="fold")  # wrapped, never cut with an ellipsis
            for r in rep["roles"]:
                status = "[green]ok[/green]" if r["ok"] else "[red]FAIL[/red]"
                table.add_row(r["role"], status, f"{r['load_ms']:.0f}", f"{r['infer_ms']:.0f}",
                              f"{r['peak_rss_mb']:.0f}", r["detail"] or r["error"])
            console.print(table)
            console.print("all roles ok" if rep["ok"] else f"[red]failed: {', '.join(rep['failed'])}[/red]")

        emit(report, as_json, human)
        if failed:
            raise SystemExit(1)
