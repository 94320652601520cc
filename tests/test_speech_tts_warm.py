"""Answer openings pre-rendered into the TTS disk cache (speech.warm, `vehicle-assist index`): the opening of an
answer the car gives is rendered under the key the runtime's speaker looks up; pinned openings survive the
cache's eviction; route advisories and command replies have their openings listed. Real Piper voice, real
Highway Code index, the car's advisory lane."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from vehicle_assist import clock, config
from vehicle_assist.speech import tts, warm
from vehicle_assist.speech.controls import VoiceControls
from vehicle_assist.speech.speak import Speaker


class Recorder:
    """An arbiter with nothing playing that keeps what is queued."""

    def __init__(self) -> None:
        import threading

        self.cancel_event = threading.Event()
        self.queued: list = []

    def begin_advisory(self) -> None:
        pass

    def say(self, req) -> None:
        self.queued.append(req)

    def is_speaking(self) -> bool:
        return False


class Cut:
    """Stands for Piper where only the cut matters (nothing is rendered)."""

    split_first_phrase = True


@pytest.fixture(scope="module")
def parts():
    from vehicle_assist.advisory import lane as lanes

    return lanes.load(config.load_app(), route="extractive")


@pytest.fixture(scope="module")
def openings(parts):
    cfg = config.load_app()
    speaker = Speaker(warm.Silent(), Cut(), first_chunk_words=cfg.speech.tts.first_chunk_words)
    return warm.openings(speaker, warm.phrases(cfg, parts)["answers"])


@pytest.mark.slow
def test_a_code_answer_opens_from_the_cache_warmed_under_the_runtime_key(parts, openings, tmp_path, monkeypatch):
    """The lane answers a question; the car's speaker (its rate, the voice's volume, the spoken-text normaliser, the
    first-phrase cut) asks the renderer for the opening the warm-up rendered, from the listed openings alone.
    Fails when the warm-up's text, rate or key differ from what the runtime asks for."""
    cfg = config.load_app()
    run = parts.bind(None)
    rep = asyncio.run(run.execute_report("how big a gap should I leave behind the car in front", None, clock.perf_ns()))
    answer = rep.advisory.text
    assert rep.route == "extractive" and not rep.advisory.refused and len(answer.split()) > 8
    # warm only the listed openings this answer starts with (the full list takes minutes to render)
    mine = [(t, r) for t, r in openings if answer.startswith(t)]
    assert mine, f"no listed opening begins {answer!r}"
    piper = tts.load_renderer("piper", cache_mb=0)
    piper.disk_cache = tts.DiskCache(tmp_path, 50_000_000)
    report = warm.prerender(piper, mine)
    assert report.rendered == len(mine) and report.pinned_bytes > 10_000
    assert all(f.parent.name == "pinned" for f in tmp_path.rglob("*.flac"))

    # the car: a fresh renderer on the same cache, the speaker's rate set as the voice lane sets it
    car = tts.load_renderer("piper", cache_mb=0)
    car.disk_cache = tts.DiskCache(tmp_path, 50_000_000)
    asked: list[str] = []
    real = car._synthesize
    monkeypatch.setattr(car, "_synthesize", lambda text, scale: asked.append(text) or real(text, scale))
    arbiter = Recorder()
    speaker = Speaker(arbiter, car, first_chunk_words=cfg.speech.tts.first_chunk_words)
    speaker.rate = VoiceControls().rate
    t0 = clock.perf_ns()
    speaker(tts.split_sentences(answer)[0])
    first_ms = (speaker.queued_ns - t0) / 1e6
    head = arbiter.queued[0].text
    assert (head, VoiceControls().rate) in mine and car.disk_cache.hits >= 1
    assert car.cache_key(head, speaker.rate)[2] not in asked  # the opening was never synthesised
    assert first_ms < 50  # from disk: ~1 ms (a render takes 100+ ms)
    cached = piper.disk_cache.get(*piper.cache_key(head, VoiceControls().rate))
    assert cached is not None and np.array_equal(cached, arbiter.queued[0].pcm)


def test_the_listed_openings_cover_the_code_and_the_fixed_phrases(openings, parts):
    texts = [t for t, _ in openings]
    s = parts.settings
    assert s.refusal_text in texts or any(s.refusal_text.startswith(t) for t in texts)
    assert 1500 < len(texts) < 4000 and len(set(openings)) == len(openings)


def test_command_replies_are_listed_at_the_rate_they_are_said():
    replies = dict(warm.command_replies(10))
    assert replies["Alerts are back on."] == 175 and replies["Alerts muted for 10 minutes."] == 175
    assert replies["I'll speak more slowly."] == 150  # the reply comes after the rate changed


def test_route_advisories_open_with_what_the_route_lane_says():
    from vehicle_assist.messages import RouteFeature
    from vehicle_assist.route import advice

    table = advice.load_table()
    texts = advice.spoken_texts(table)
    k = table.advice["zebra-crossing"]
    said = advice.compose("zebra-crossing", RouteFeature("crossing", 143.0, "zebra", osm_id=1), k)
    assert said in texts and said.startswith("Zebra crossing in 150 metres.")
    heads = warm.openings(Speaker(warm.Silent(), Cut()),
                          [(t, 175) for t in texts], exclude=advice.ROAD)
    assert ("Zebra crossing in 150 metres.", 175) in heads and ("Speed limit changes", 175) in heads
    assert not any(advice.ROAD in h for h, _ in heads)


def test_pinned_entries_outlive_eviction_and_stale_ones_are_pruned(tmp_path):
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal(22050)).astype(np.float32)  # 1 s of noise: ~40 kB as FLAC (no compression)
    cache = tts.DiskCache(tmp_path, max_bytes=300_000)
    assert cache.put("joe", "1.000/0.8", "Keep left.", noise, 22050, pinned=True)
    size = cache.pinned_bytes
    assert 30_000 < size < 50_000
    for k in range(12):  # twelve more seconds: the others are evicted, the pinned one stays
        cache.put("joe", "1.000/0.8", f"sentence {k}", noise, 22050)
    assert cache.size <= 300_000
    assert cache.get("joe", "1.000/0.8", "Keep left.") is not None
    assert cache.get("joe", "1.000/0.8", "sentence 0") is None and cache.get("joe", "1.000/0.8", "sentence 11") is not None
    # pin an entry already there: moved, not rendered again
    assert cache.pin("joe", "1.000/0.8", "sentence 11") and cache.path("joe", "1.000/0.8", "sentence 11", pinned=True).is_file()
    assert cache.pinned_bytes > size
    # a new set of openings: the old pinned one is dropped
    keep = {cache.path("joe", "1.000/0.8", "sentence 11", pinned=True)}
    assert cache.unpin_except(keep) == size and cache.get("joe", "1.000/0.8", "Keep left.") is None
    # a new cache object counts what is on disk, pinned included
    again = tts.DiskCache(tmp_path, max_bytes=300_000)
    assert again.pinned_bytes == cache.pinned_bytes and again.size == sum(f.stat().st_size for f in tmp_path.rglob("*.flac"))


def test_openings_stop_at_their_share_of_the_cache(tmp_path):
    class Fake:
        """A renderer that 'renders' 40 kB per opening (isolates the loop from Piper)."""

        def __init__(self, disk):
            self.disk_cache, self.calls = disk, 0

        def cache_key(self, text, rate=None):
            return ("joe", f"{175 / (rate or 175):.3f}/0.8", text)

        def prerender(self, text, rate=None):
            key = self.cache_key(text, rate)
            if self.disk_cache.pin(*key):
                return False
            if not self.disk_cache.room_for_pinned():
                return None
            self.calls += 1
            pcm = (0.3 * np.random.default_rng(self.calls).standard_normal(22050)).astype(np.float32)
            return True if self.disk_cache.put(*key, pcm, 22050, pinned=True) else None

    fake = Fake(tts.DiskCache(tmp_path, max_bytes=200_000))
    heads = [(f"opening {k}", 175) for k in range(10)]
    report = warm.prerender(fake, heads)
    assert report.rendered == fake.calls < 6 and report.skipped == 10 - report.rendered and "cache_mb" in report.note
    assert fake.disk_cache.pinned_bytes < 0.75 * 200_000 + 45_000
    again = warm.prerender(fake, heads[:2])  # a second run renders nothing that is there, prunes the rest
    assert (again.rendered, again.cached) == (0, 2) and len(list((tmp_path / "pinned").glob("*.flac"))) == 2


def test_a_legacy_wav_entry_is_still_read(tmp_path):
    cache = tts.DiskCache(tmp_path, max_bytes=1_000_000)
    pcm = np.zeros(2205, np.float32)
    cache.path("joe", "1.000", "Slow down.").with_suffix(".wav").write_bytes(tts.pcm_to_wav(pcm, 22050))
    assert cache.get("joe", "1.000", "Slow down.") is not None
    assert tts.DiskCache(tmp_path, 1_000_000).size > 0  # counted, so it is evicted like the others


def test_index_pre_renders_unless_told_not_to(monkeypatch):
    """The CLI wiring (the warm-up itself is the slow test above): --no-voice skips it; else its report is shown."""
    from typer.testing import CliRunner

    from vehicle_assist.cli import app

    calls = []

    def fake(cfg, renderer, parts, progress=None, prune=True):
        calls.append(parts)
        return warm.WarmReport(phrases=3, rendered=1, cached=2, render_s=0.4, pinned_bytes=2_000_000, max_bytes=256_000_000)

    monkeypatch.setattr(warm, "warm", fake)
    runner = CliRunner()
    out = runner.invoke(app, ["index", "--no-voice", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout.strip().splitlines()[-1])["voice"] is None and not calls
    out = runner.invoke(app, ["index", "--json"])
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.exit_code == 0 and doc["voice"]["phrases"] == 3 and len(calls) == 1
    out = runner.invoke(app, ["index"])
    assert "3 of 3 answer openings in the TTS cache (1 rendered" in out.stdout
