"""Data fetching: sha256-checked, from a mirror or upstream (a local HTTP server here)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from vehicle_assist import fetch
from vehicle_assist.fetch import FetchError, FileSpec

PAYLOAD = b"Rule 126: allow at least a two-second gap.\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def server():
    """A local HTTP server: /good serves PAYLOAD; /bad serves other bytes; others 404."""

    class Handler(http.server.BaseHTTPRequestHandler):
        hits: list[str] = []

        def do_GET(self):  # noqa: N802 (http.server API)
            Handler.hits.append(self.path)
            body = {"/good": PAYLOAD, "/bad": PAYLOAD + b"tampered"}.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler.hits
    httpd.shutdown()


def test_downloads_from_upstream_and_verifies(server, tmp_path):
    url, _ = server
    res = fetch.fetch_file("g", FileSpec(name="rules.txt", sha256=SHA, upstream=f"{url}/good"), tmp_path)
    assert res.how == "upstream" and res.path.read_bytes() == PAYLOAD


def test_second_fetch_is_a_no_op(server, tmp_path):
    url, hits = server
    spec = FileSpec(name="rules.txt", sha256=SHA, upstream=f"{url}/good")
    fetch.fetch_file("g", spec, tmp_path)
    n = len(hits)
    assert fetch.fetch_file("g", spec, tmp_path).how == "present"
    assert len(hits) == n


def test_wrong_checksum_fails_and_leaves_nothing(server, tmp_path):
    url, _ = server
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch.fetch_file("g", FileSpec(name="rules.txt", sha256=SHA, upstream=f"{url}/bad"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_local_copy_is_replaced(server, tmp_path):
    url, _ = server
    (tmp_path / "rules.txt").write_bytes(b"half a file")
    res = fetch.fetch_file("g", FileSpec(name="rules.txt", sha256=SHA, upstream=f"{url}/good"), tmp_path)
    assert res.how == "upstream" and res.path.read_bytes() == PAYLOAD


def test_http_error_is_a_clear_fetch_error(server, tmp_path):
    url, _ = server
    with pytest.raises(FetchError, match="download from .*/missing failed"):
        fetch.fetch_file("g", FileSpec(name="x", sha256=SHA, upstream=f"{url}/missing"), tmp_path)


def test_mirror_is_preferred_and_checked(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "rules.txt").write_bytes(PAYLOAD)
    res = fetch.fetch_file("g", FileSpec(name="rules.txt", sha256=SHA, upstream="http://127.0.0.1:9/never"),
                           tmp_path / "dest", mirror)
    assert res.how == "mirror"
    (mirror / "g" / "rules.txt").write_bytes(b"wrong")
    with pytest.raises(FetchError, match="checksum mismatch from mirror"):
        fetch.fetch_file("g", FileSpec(name="rules.txt", sha256=SHA), tmp_path / "dest2", mirror)
    assert not (tmp_path / "dest2" / "rules.txt").exists()


def test_no_source_names_every_place_looked(tmp_path):
    spec = FileSpec(name="derived.bin", sha256=SHA, derived="made by hand")
    with pytest.raises(FetchError) as err:
        fetch.fetch_file("g", spec, tmp_path / "dest", tmp_path / "mirror")
    msg = str(err.value)
    assert "derived.bin" in msg and "mirror" in msg and "made by hand" in msg and "VA_MIRROR" in msg


def test_blocked_network_fails_fast():
    """Tests block the network: a hidden download elsewhere must fail at once, not hang."""
    spec = FileSpec(name="x", sha256=SHA, upstream="https://raw.githubusercontent.com/udacity/x/master/y")
    with pytest.raises(Exception):
        fetch.fetch_file("g", spec, Path("/tmp/va-never"), timeout_s=2)


def test_every_catalogued_file_is_present_and_correct():
    """The real catalogue: after `vehicle-assist fetch` every file verifies (CI fails otherwise)."""
    results, errors = fetch.fetch_all(mirror=None)
    assert errors == []
    assert {r.how for r in results} == {"present"}
    assert len(results) == sum(len(g.files) for g in fetch.catalogue().groups.values())
