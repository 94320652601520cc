"""``vehicle-assist models``: list model roles, where each resolves from, and sizes."""

from __future__ import annotations

import typer
from rich.table import Table

from vehicle_assist import models
from vehicle_assist.commands._out import console, emit


def register(app: typer.Typer) -> None:
    @app.command("models", short_help="List the model roles, where each resolves from, and sizes.")
    def list_models(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
        """List model roles, the source each resolves to, and its size (no model is loaded)."""
        cfg = models.load_config()
        rows = []
        for role, spec in cfg.roles.items():
            row = {"role": role, "kind": spec.kind, "description": spec.description, "required": spec.required}
            try:
                res = models.resolve(role, cfg)
                row.update(found=True, origin=res.origin, path=str(res.path), size_mb=round(res.size_bytes / 1e6, 1))
            except models.ModelNotFound as err:
                row.update(found=False, looked=err.looked, how_to_get=err.how)
            rows.append(row)

        def human(items: list) -> None:
            table = Table(title="model roles")
            for col in ("role", "kind", "source", "size MB", "path / how to get"):
                table.add_column(col)
            for r in items:
                if r["found"]:
                    table.add_row(r["role"], r["kind"], r["origin"], f"{r['size_mb']}", r["path"])
                else:
                    table.add_row(r["role"], r["kind"], "[red]missing[/red]", "-", r["how_to_get"])
            console.print(table)

        emit(rows, as_json, human)
        if any(not r["found"] and r["required"] for r in rows):
            raise SystemExit(1)
