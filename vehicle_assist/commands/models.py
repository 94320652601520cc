"""``vehicle-assist models``: list model roles, where each resolves from, and sizes."""

from __future__ import annotations

import typer

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
            # plain aligned columns, the path last and whole (a table would shorten it to fit the terminal)
            rows_out = [("role", "kind", "source", "size MB", "path / how to get")]
            for r in items:
                if r["found"]:
                    rows_out.append((r["role"], r["kind"], r["origin"], f"{r['size_mb']}", r["path"]))
                else:
                    rows_out.append((r["role"], r["kind"], "MISSING", "-",
                                     f"looked in: {'; '.join(r['looked'])}; how to get it: {r['how_to_get']}"))
            widths = [max(len(row[i]) for row in rows_out) for i in range(4)]
            for row in rows_out:
                line = "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]
                console.print(line, markup=False, highlight=False, soft_wrap=True)

        emit(rows, as_json, human)
        if any(not r["found"] and r["required"] for r in rows):
            raise SystemExit(1)
