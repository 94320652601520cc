"""The ONNX embedder: same vectors as sentence-transformers, no torch on the query path (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vehicle_assist import fetch, models, paths
from vehicle_assist.knowledge import onnx_embed
from vehicle_assist.config import KnowledgeSettings
from vehicle_assist.knowledge.encoder import Encoder, OnnxEncoder
from vehicle_assist.knowledge.onnx_embed import (
    OnnxUnavailable,
    cached_path,
    ensure_onnx,
    model_layout,
)
from vehicle_assist.knowledge.retrieve import make_encoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def st_model():
    return models.load_embedder()


@pytest.fixture(scope="module")
def onnx_embedder():
    return onnx_embed.load(threads=1)


def _texts() -> list[str]:
    rules = [json.loads(line) for line in
             fetch.data_path("knowledge", "uk_highway_code.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = [json.loads(line)["question"] for line in
                 (paths.home() / "bench" / "data" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    long_rule = max(rules, key=lambda r: len(r["text"]))["text"]  # far past 256 tokens: truncated alike
    return [r["text"] for r in rules[::3]] + questions[::2] + [long_rule, "a", "MOT?", "70 mph (112 km/h)"]


def test_onnx_vectors_match_sentence_transformers(st_model, onnx_embedder):
    texts = _texts()
    assert len(texts) > 200
    ref = st_model.encode(texts, batch_size=32, normalize_embeddings=True)
    onnx = OnnxEncoder(onnx_embedder, build_threads=1).encode(texts, batch_size=16)
    cos = (np.asarray(ref) * onnx).sum(axis=1)
    assert cos.min() >= 0.999, (cos.min(), texts[int(cos.argmin())][:80])
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    parallel = OnnxEncoder(onnx_embedder, build_threads=2).encode(texts, batch_size=16, parallel=True)  # batches on 2 workers
    assert np.allclose(parallel, onnx, atol=1e-6)
    one = OnnxEncoder(onnx_embedder).encode([texts[5]])  # a lone query (no padding) == in a padded batch
    assert float(one[0] @ onnx[5]) >= 0.9999


def test_token_counts_match_the_model_tokenizer(st_model, onnx_embedder):
    torch_enc = Encoder(st_model)
    for text in _texts()[:40]:
        assert onnx_embedder.count_tokens(text) == torch_enc.count_tokens(text)
    assert onnx_embedder.max_tokens == torch_enc.max_tokens == 256
    assert max(len(ids) for ids in onnx_embedder.token_ids(_texts())) == 256


def test_export_is_cached_by_the_model_hash(onnx_embedder):
    res = models.resolve("embedder")
    path = ensure_onnx(res)
    assert path == cached_path(res.path) == onnx_embedder.onnx_file and path.is_file()
    assert path.parent == paths.cache() / "models"
    mtime = path.stat().st_mtime_ns
    assert ensure_onnx(res).stat().st_mtime_ns == mtime  # not exported again


def test_query_path_never_imports_torch():
    code = ("import sys\nfrom vehicle_assist.knowledge.retrieve import Retriever\n"
            "r = Retriever.load(progress=False)\n"
            "x = r.search('there is an ambulance with blues on behind me')\n"
            "assert r.encoder.name == 'onnx' and x.passages, (r.encoder.name, x)\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False,
                         env={**os.environ, "PYTHONPATH": str(paths.home())})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_unsupported_layout_falls_back_to_torch(tmp_path, st_model, monkeypatch):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    with pytest.raises(OnnxUnavailable) as err:
        model_layout(tmp_path)
    assert err.value.code == "onnx-layout" and "mean pooling" in str(err.value)
    with pytest.raises(OnnxUnavailable):
        model_layout(tmp_path / "nowhere")
    res = models.Resolved("embedder", "sentence-transformers", tmp_path, "path", 0, {})
    monkeypatch.setattr(models, "load_embedder", lambda res=None: st_model)  # the torch side stands in
    notes: list[str] = []
    enc = make_encoder(KnowledgeSettings(), res, None, 1, notes.append)
    assert enc.name == "torch" and "ONNX embedder unavailable" in notes[0] and "onnx-layout" in notes[0]
    assert make_encoder(KnowledgeSettings(), res, st_model).name == "torch"  # a passed model is used as is
    assert make_encoder(KnowledgeSettings(encoder="torch"), models.resolve("embedder"), st_model).name == "torch"
