"""Long audio in bounded memory: files are read, resampled and cut block by block; whole-file modes
refuse input over their stated length. Peak memory is measured in child processes (ru_maxrss)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from vehicle_assist.speech import audio, vad

LONG_S = 20 * 60
SR_FILE = 48000  # stereo 48 kHz: the read is resampled and mixed down block by block

# Runs a command in this interpreter and reports the process's own peak RSS on stderr.
PEAK = """
import resource, sys
from vehicle_assist.cli import main
sys.argv = ["vehicle-assist", *sys.argv[1:]]
try:
    main()
finally:
    sys.stderr.write("\\nPEAK_KB %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _write_noise(path, seconds: int) -> None:
    """Quiet car-like noise (-60 dBFS), stereo 48 kHz 16-bit, written a second at a time."""
    rng = np.random.default_rng(7)
    second = (rng.standard_normal((SR_FILE, 2)) * 0.001).astype(np.float32)
    with sf.SoundFile(str(path), "w", SR_FILE, 2, "PCM_16") as f:
        for _ in range(seconds):
            f.write(second)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    long, short = folder / "long.wav", folder / "short.wav"
    _write_noise(long, LONG_S)
    _write_noise(short, 20)
    return long, short


def _peak(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, int]:
    out = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **(env or {})})
    kb = [int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK_KB")]
    assert kb, out.stderr[-2000:]
    return out, kb[-1] * 1024


def test_stream_resampler_gives_the_whole_file_samples():
    rng = np.random.default_rng(0)
    for sr in (44100, 48000, 22050, 8000, 16000):
        x = rng.standard_normal(sr * 2 + 333).astype(np.float32)
        rs = audio.StreamResampler(sr)
        sizes, outs, i, k = (1, 7, 999, 4410, 30011), [], 0, 0
        while i < len(x):
            outs.append(rs.feed(x[i:i + sizes[k % len(sizes)]]))
            i += sizes[k % len(sizes)]
            k += 1
        outs.append(rs.flush())
        streamed, whole = np.concatenate(outs), audio.resample(x, sr)
        assert streamed.shape == whole.shape
        assert np.allclose(streamed, whole, atol=1e-6), sr


def test_streamed_file_matches_the_loaded_file(data, tmp_path):
    path = data("speech", "jfk_ask_not_what_your_country.flac")  # 44.1 kHz stereo
    blocks = list(audio.stream_audio(path, block_s=0.37))
    assert len(blocks) > 10 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    whole, sr = audio.load_audio(path)
    assert np.array_equal(np.concatenate(blocks), whole)
    m4a = tmp_path / "jfk.m4a"  # AAC in MP4, which libsndfile cannot read: the ffmpeg pipe, read in blocks
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), str(m4a)], check=True)
    piped = list(audio.stream_audio(m4a, block_s=0.5))
    assert len(piped) > 10 and abs(sum(map(len, piped)) / sr - 11.0) < 0.1


def test_rechunked_stream_equals_chunks_of_the_whole():
    pcm = np.arange(16000 * 3 + 555, dtype=np.float32)
    blocks = [pcm[i:i + 7777] for i in range(0, len(pcm), 7777)]
    a = list(audio.chunks(pcm, 16000, 100, t0_ns=10))
    b = list(audio.rechunk(iter(blocks), 16000, 100, t0_ns=10))
    assert [c.t_ns for c in a] == [c.t_ns for c in b]
    assert all(np.array_equal(x.pcm, y.pcm) for x, y in zip(a, b)) and len(a) == len(b)


def test_file_source_holds_a_long_file_in_bounded_memory(long_wav):
    """`run --mic FILE` reads through FileSource: 20 minutes cost no more peak memory than 20 s."""
    long, short = long_wav
    code = f"""
import resource, numpy as np
from vehicle_assist.speech import audio, vad

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def play(path):
    seg, t, n = vad.VadSegmenter(), 0.0, 0
    for c in audio.FileSource(path, block_ms=100):
        seg.process(c.pcm, t)
        t += c.duration_s
        n += len(c.pcm)
    return n

n_short = play({str(short)!r})
base = peak()
n_long = play({str(long)!r})
print(n_short, n_long, base, peak())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n_short, n_long, base, after = map(int, out.stdout.split())
    assert abs(n_long / 16000 - LONG_S) < 0.01 and abs(n_short / 16000 - 20) < 0.01
    # whole, the file alone is 16000*1200*4 = 77 MB at 16 kHz (461 MB decoded at 48 kHz stereo)
    assert after - base < 30e6, f"peak grew {(after - base) / 1e6:.0f} MB over 20 minutes"


def test_listen_streams_a_long_file_in_bounded_memory(long_wav):
    long, short = long_wav
    short_out, short_peak = _peak("listen", str(short), "--json")
    assert short_out.returncode == 0, short_out.stderr[-2000:]
    long_out, long_peak = _peak("listen", str(long), "--json")
    assert long_out.returncode == 0, long_out.stderr[-2000:]
    doc = json.loads(long_out.stdout)
    assert doc["audio_s"] == pytest.approx(LONG_S, abs=0.01) and doc["utterances"] == []
    assert long_peak - short_peak < 60e6, f"listen on 20 min peaked {(long_peak - short_peak) / 1e6:.0f} MB above 20 s"


def test_listen_whole_refuses_a_file_over_the_limit(long_wav):
    long, _ = long_wav
    out, peak = _peak("listen", str(long), "--whole", "--json")
    assert out.returncode == 2
    err = json.loads(out.stdout.splitlines()[-1])["error"]  # under --json the error is JSON on stdout
    assert err["code"] == "audio-too-long" and "speech.whole_file_max_s" in err["message"] and "600" in err["message"]
    assert "Traceback" not in out.stderr


def test_whole_file_limit_is_a_setting(data):
    path = data("speech", "jfk_ask_not_what_your_country.flac")  # 11 s
    with pytest.raises(audio.AudioError) as err:
        audio.load_audio(path, max_s=5, limit_name="speech.whole_file_max_s")
    assert err.value.code == "audio-too-long" and "5 s" in str(err.value)
    assert len(audio.load_audio(path, max_s=12)[0]) == 11 * 16000
    out, _ = _peak("listen", str(path), "--whole", "--json", env={"VA_SPEECH__WHOLE_FILE_MAX_S": "5"})
    assert out.returncode == 2 and json.loads(out.stdout.splitlines()[-1])["error"]["code"] == "audio-too-long"


def test_vad_over_a_stream_matches_the_whole(data):
    pcm, sr = audio.load_audio(data("speech", "librispeech_251-137823-0002_testing_routine.wav"))
    padded = np.concatenate([np.zeros(sr, np.float32), pcm, np.zeros(sr, np.float32)])
    whole = vad.segment(padded)
    seg, t, got = vad.VadSegmenter(), 0.0, []
    for c in audio.rechunk(iter([padded[i:i + 12345] for i in range(0, len(padded), 12345)]), sr, 100):
        got += [e.utterance for e in seg.process(c.pcm, t) if e.utterance is not None]
        t += c.duration_s
    got += [e.utterance for e in seg.flush(len(padded) / sr) if e.utterance is not None]
    assert len(whole) == len(got) == 1 and np.array_equal(whole[0].pcm, got[0].pcm)
