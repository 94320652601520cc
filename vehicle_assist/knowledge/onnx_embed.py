"""The embedder as ONNX: exported once from the sentence-transformers model, cached, run with
onnxruntime and the ``tokenizers`` fast tokenizer (no torch on the query path).

The export (``torch.onnx.export``, TorchScript exporter) runs the first time a given model is used
and writes ``paths.cache()/models/embedder-<name>-<hash>.onnx``, the hash being the source model's
fingerprint (file names, sizes, small files' bytes), so another model or changed weights export
again. The exported graph is the transformer only (input ids, attention mask, token types ->
last hidden state); mean pooling and L2 normalisation are done here in numpy, as
sentence-transformers does for a model whose modules are Transformer + mean Pooling (+ Normalize).
Any other layout raises ``OnnxUnavailable`` and the caller falls back to the torch encoder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from vehicle_assist import models, paths
from vehicle_assist.knowledge import KnowledgeError

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
"""Bump when the export recipe changes: every cached ONNX file is then exported again."""

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxUnavailable(KnowledgeError):
    """The embedder cannot be run through ONNX (layout not supported, export failed)."""


def model_layout(model_dir: Path) -> dict:
    """Window, dimension and tokenizer file of a mean-pooling sentence-transformers model folder;
    raises OnnxUnavailable for any other layout."""
    model_dir = Path(model_dir)
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((model_dir / pooling_dir / "config.json").read_text(encoding="utf-8"))
        st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, StopIteration, KeyError, TypeError, json.JSONDecodeError) as err:
        raise OnnxUnavailable("onnx-layout", f"{model_dir}: not a sentence-transformers folder ({err})") from err
    if kinds[0] != "Transformer" or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise OnnxUnavailable("onnx-layout", f"{model_dir}: modules {kinds} (need Transformer, Pooling[, Normalize])")
    if not pooling.get("pooling_mode_mean_tokens") or any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
        raise OnnxUnavailable("onnx-layout", f"{model_dir}: pooling {pooling} (only mean pooling is exported)")
    if not (model_dir / "tokenizer.json").is_file():
        raise OnnxUnavailable("onnx-layout", f"{model_dir}: no tokenizer.json (fast tokenizer) to run without torch")
    return {"max_tokens": int(st_cfg.get("max_seq_length") or 256),
            "dim": int(pooling["word_embedding_dimension"]),
            "lower_case": bool(st_cfg.get("do_lower_case", False)),
            "tokenizer": model_dir / "tokenizer.json"}


def cached_path(model_dir: Path) -> Path:
    """Where the ONNX export of the model in ``model_dir`` is (or will be) cached."""
    from vehicle_assist.knowledge.index import model_fingerprint

    fp = model_fingerprint(Path(model_dir))
    name = Path(model_dir).name if Path(model_dir).name != "model" else Path(model_dir).parent.name
    return paths.cache() / "models" / f"embedder-{name}-v{EXPORT_VERSION}-{fp[:16]}.onnx"


@contextlib.contextmanager
def _without_onnx_package():
    """torch's TorchScript exporter imports the ``onnx`` package only to splice in custom
    onnxscript functions; a plain transformer has none, so without ``onnx`` that step is skipped."""
    try:
        import onnx  # noqa: F401

        yield
        return
    except ImportError:
        pass
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    original = onnx_proto_utils._add_onnxscript_fn
    onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes
    try:
        yield
    finally:
        onnx_proto_utils._add_onnxscript_fn = original


def load(res=None, threads: int = 1) -> "OnnxEmbedder":
    """The embedder ``res`` (a models.Resolved; default the ``embedder`` role) as an onnxruntime session
    + fast tokenizer, exported with torch once and then cached. Raises OnnxUnavailable if it cannot be."""
    res = res or models.resolve("embedder")
    return OnnxEmbedder(ensure_onnx(res), res.path, threads=threads)


def export(res, out: Path) -> Path:
    """Export the transformer of the embedder ``res`` (a models.Resolved) to ``out`` (torch needed)."""
    import warnings

    import torch

    st = models.load_embedder(res)
    model = st[0].auto_model.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2023, 102, 0, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()  # a padded row, so the traced graph keeps the attention mask
    axes = {n: {0: "batch", 1: "tokens"} for n in (*_INPUTS, "last_hidden_state")}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), _without_onnx_package(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(model), (ids, mask, torch.zeros_like(ids)), str(tmp),
                              input_names=list(_INPUTS), output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, out)
    except Exception as err:  # the exporter raises many kinds; any of them means "use torch"
        tmp.unlink(missing_ok=True)
        raise OnnxUnavailable("onnx-export", f"exporting {res.path} to ONNX failed: {err}") from err
    return out


def ensure_onnx(res) -> Path:
    """The cached ONNX file for the embedder ``res``, exported first if absent."""
    model_layout(res.path)
    out = cached_path(res.path)
    if not out.is_file():
        log.info("exporting the embedder %s to %s (once)", res.path, out)
        export(res, out)
    return out


class OnnxEmbedder:
    """An onnxruntime session plus the model's fast tokenizer; ``embed`` gives L2-normalised vectors."""

    def __init__(self, onnx_file: Path, model_dir: Path, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        layout = model_layout(model_dir)
        self.onnx_file, self.model_dir, self.threads = Path(onnx_file), Path(model_dir), threads
        self.max_tokens, self.dim, self._lower = layout["max_tokens"], layout["dim"], layout["lower_case"]
        self.tokenizer = Tokenizer.from_file(str(layout["tokenizer"]))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        try:
            self.session = models.onnx_session(onnx_file, threads)
        except Exception as err:  # onnxruntime raises its own exception types for a corrupt file
            raise OnnxUnavailable("onnx-load", f"{onnx_file}: {err}") from err
        self._inputs = [i.name for i in self.session.get_inputs()]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids with special tokens, truncated to the model window."""
        texts = [t.lower() for t in texts] if self._lower else texts
        return [e.ids[: self.max_tokens - 1] + e.ids[-1:] if len(e.ids) > self.max_tokens else e.ids
                for e in self.tokenizer.encode_batch(texts)]

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text`` (special tokens included, no truncation)."""
        return len(self.tokenizer.encode(text.lower() if self._lower else text).ids)

    def embed_ids(self, batch: list[list[int]]) -> np.ndarray:
        """One forward pass over a batch of token-id lists -> L2-normalised mean-pooled vectors."""
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: feed[k] for k in self._inputs})[0]
        m = mask[..., None].astype(np.float32)
        vecs = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return (vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)).astype(np.float32)
