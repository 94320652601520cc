"""Turn the CTranslate2 Whisper model (faster-whisper's format) into an openai-whisper checkpoint.

Offline: the openai-whisper backend needs a PyTorch ``.pt`` (``{"dims", "model_state_dict"}``),
and the Whisper weights on board are CTranslate2 ``model.bin`` files (the ``asr`` and ``asr_base`` roles). Its
binary layout (CTranslate2 ``model_spec._serialize``, binary version 6) is: version, spec name,
revision, then per variable: name, rank, dims, dtype id, byte count, raw bytes; then aliases.
CTranslate2 fuses the attention projections (self-attention ``linear_0`` = [q; k; v],
cross-attention ``linear_1`` = [k; v]); they are split back. Whisper's key projection has no bias
(CTranslate2 stores zeros there). The result is cached at ``paths.cache()/models/whisper-<name>.pt``.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vehicle_assist import paths
from vehicle_assist.errors import CodedError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ConvertError(CodedError):
    """The CTranslate2 model could not be converted (unknown format or layout)."""

    bracketed = True


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode("utf-8")


def read_ct2(path: Path | str) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 ``model.bin`` as float32/int arrays (int8 weights dequantised)."""
    path = Path(path)
    raw: dict[str, np.ndarray] = {}
    with path.open("rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version < 5:
            raise ConvertError("ct2-version", f"{path}: CTranslate2 binary version {version} is not supported (need >= 5)")
        spec = _string(f)
        if spec != "WhisperSpec":
            raise ConvertError("ct2-spec", f"{path}: a {spec}, not a WhisperSpec")
        f.read(4)  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank)) if rank else ()
            (dtype_id,) = struct.unpack("<B", f.read(1))
            (nbytes,) = struct.unpack("<I", f.read(4))
            if dtype_id not in _DTYPES:
                raise ConvertError("ct2-dtype", f"{path}: variable {name} has dtype id {dtype_id} (bfloat16?), unsupported")
            raw[name] = np.frombuffer(f.read(nbytes), dtype=_DTYPES[dtype_id]).reshape(dims)
        (n_alias,) = struct.unpack("<I", f.read(4))
        for _ in range(n_alias):
            alias, target = _string(f), _string(f)
            raw[alias] = raw[target]
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name.endswith("_scale"):
            continue
        scale = raw.get(name + "_scale")
        if value.dtype == np.int8 and scale is not None:  # CTranslate2: q = round(w * scale)
            value = value.astype(np.float32) / scale.reshape(-1, *([1] * (value.ndim - 1)))
        out[name] = value.astype(np.float32) if value.dtype in (np.float16, np.float32) else value
    return out


def _layers(v: dict[str, np.ndarray], side: str) -> int:
    return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})


def dims_for(v: dict[str, np.ndarray], n_vocab: int | None = None) -> dict[str, int]:
    """openai-whisper ``ModelDimensions`` read off the CTranslate2 variables."""
    emb = v["decoder/embeddings/weight"]
    return {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": _layers(v, "encoder"),
        "n_vocab": int(n_vocab or emb.shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(emb.shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": _layers(v, "decoder"),
    }


def state_dict_for(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 variable names to openai-whisper's ``state_dict`` keys (numpy values)."""
    sd: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if f"{src}/bias" in v:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = v[f"{src}/gamma"], v[f"{src}/beta"]

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        ws = np.split(v[f"{src}/weight"], len(names))
        bs = np.split(v[f"{src}/bias"], len(names))
        for name, w, b in zip(names, ws, bs):
            sd[f"{dst}.{name}.weight"] = w
            if name != "key":  # Whisper's key projection has no bias (CTranslate2 stores zeros)
                sd[f"{dst}.{name}.bias"] = b

    for side in ("encoder", "decoder"):
        for i in range(_layers(v, side)):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
            linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
            norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
            linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
            linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
            norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
            if side == "decoder":
                linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
                split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
                linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
                norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    norm("decoder.ln", "decoder/layer_norm")
    return sd


def default_target(name: str = "tiny.en") -> Path:
    """Where the converted checkpoint is cached."""
    return paths.cache() / "models" / f"whisper-{name}.pt"


def convert(ct2_dir: Path | str, target: Path | str | None = None, force: bool = False) -> Path:
    """Write the openai-whisper checkpoint for a CTranslate2 Whisper folder (``models.resolve("asr").path``)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    ct2_dir, target = Path(ct2_dir), Path(target or default_target())
    if target.is_file() and not force:
        return target
    model_bin = ct2_dir / "model.bin"
    if not model_bin.is_file():
        raise ConvertError("ct2-missing", f"{model_bin}: no CTranslate2 model here")
    v = read_ct2(model_bin)
    dims = ModelDimensions(**dims_for(v))
    sd = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in state_dict_for(v).items()}
    model = Whisper(dims)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ConvertError("ct2-layout", f"state_dict mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    heads = _alignment_heads(ct2_dir, dims)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict(), "alignment_heads": heads}, tmp)
    tmp.replace(target)
    return target


def load_model(ct2_dir: Path | str, threads: int = 2, name: str = "tiny.en"):
    """The same Whisper as an openai-whisper (PyTorch) model, converted from the CTranslate2 weights
    on first use and cached as ``whisper-<name>.pt``."""
    import torch
    import whisper

    torch.set_num_threads(threads)
    return whisper.load_model(str(convert(ct2_dir, default_target(name))), device="cpu")


def _alignment_heads(ct2_dir: Path, dims) -> list[list[int]] | None:
    cfg = ct2_dir / "config.json"
    if not cfg.is_file():
        return None
    heads = json.loads(cfg.read_text()).get("alignment_heads")
    return [list(map(int, h)) for h in heads] if heads else None
