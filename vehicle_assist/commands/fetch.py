"""``vehicle-assist fetch``: bring data that does not ship on PyPI into the project's folders."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vehicle_assist import fetch as fetching
from vehicle_assist.commands._out import console, emit, fail, progress


def register(app: typer.Typer) -> None:
    @app.command(short_help="Fetch detector weights, rule sources, drives and test media.")
    def fetch(
        groups: Optional[list[str]] = typer.Argument(None, metavar="GROUP", help="Data groups to fetch (default: all). See configs/data.yaml."),
        mirror: Optional[Path] = typer.Option(None, envvar="VA_MIRROR", metavar="DIR", help="Mirror folder to copy from instead of upstream (layout <group>/<name>)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Fetch detector weights, rule sources, drives and test media; each file is checked by sha256.

        Files already present and correct are left alone, so running it again is cheap.
        """
        total = sum(len(g.files) for n, g in fetching.catalogue().groups.items() if not groups or n in groups)
        try:
            with progress("fetching data", total, enabled=not as_json) as advance:
                results, errors = fetching.fetch_all(groups, mirror, on_file=lambda g, n: advance())
        except fetching.FetchError as err:  # only an unknown group stops it: a file that fails is listed in errors
            fail(err, 2, code="unknown-group")
        summary = {
            "files": len(results),
            "bytes": sum(r.bytes for r in results),
            "by_origin": {how: sum(r.how == how for r in results) for how in ("present", "mirror", "upstream")},
            "errors": errors,
        }

        def human(s: dict) -> None:
            o = s["by_origin"]
            console.print(f"{s['files']} files ready ({s['bytes'] / 1e6:.1f} MB): {o['present']} already present, "
                          f"{o['mirror']} from mirror, {o['upstream']} downloaded")
            for e in s["errors"]:
                console.print(f"error: {e}", markup=False, highlight=False)

        emit(summary, as_json, human)
        if errors:
            raise SystemExit(1)
