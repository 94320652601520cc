"""Model registry: each role (detector, asr, embedder, slm, tts; optional asr_base, tts_piper)
resolves to one local source.

``configs/models.yaml`` is the table. :func:`resolve` finds where a role's model lives without
loading it; ``load_<role>`` loads it once, behind a small interface. A missing model raises
:class:`ModelNotFound`, naming the role, every place looked, and how to get it. Nothing here
downloads (see :mod:`vehicle_assist.offline`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_assist import config, paths
from vehicle_assist.config import StrictModel
from vehicle_assist.errors import CodedError

ROLES = ("detector", "asr", "embedder", "slm", "tts", "asr_base", "tts_piper")


class PackageSource(StrictModel):
    name: str
    subpath: str = ""


class PartsSource(StrictModel):
    """A model split over several PyPI packages: ``file`` is the concatenation of the one
    ``<file>.part*`` in each package's ``subpath`` (in package order), checked against ``sha256``;
    the other files of the packages' folders are copied beside it into the model cache at ``into``."""

    packages: list[str]
    subpath: str = ""
    file: str
    sha256: str
    into: str


class RoleSpec(StrictModel):
    kind: str
    description: str = ""
    path: str | None = None
    package: PackageSource | None = None
    parts: PartsSource | None = None
    fetched: str | None = None
    system: str | None = None
    upstream: str = ""
    how_to_get: str = ""
    required: bool = True
    options: dict[str, Any] = {}


class ModelsConfig(StrictModel):
    roles: dict[str, RoleSpec]


class ModelNotFound(CodedError):
    """A role's model is in none of the places configured for it (code ``model-missing``); the
    message names the role, every place looked, and how to get it, on one line."""

    def __init__(self, role: str, looked: list[str], how: str) -> None:
        self.role, self.looked, self.how = role, looked, how
        super().__init__("model-missing", f"model for role '{role}' not found; looked in: " + "; ".join(looked)
                         + f"; how to get it: {how}")


@dataclass(frozen=True)
class Resolved:
    """Where a role's model was found."""

    role: str
    kind: str
    path: Path
    origin: str  # "path" | "env" | "package" | "assembled" | "fetched" | "system"
    size_bytes: int
    options: dict[str, Any]


def load_config(path: Path | None = None) -> ModelsConfig:
    cfg = config.load(path or config.config_path("models.yaml"), ModelsConfig)
    missing = [r for r in ROLES if r not in cfg.roles]
    if missing:
        raise config.ConfigError(path or config.config_path("models.yaml"), "roles", f"entries for {missing}")
    return cfg


def resolve(role: str, cfg: ModelsConfig | None = None) -> Resolved:
    """Find a role's model on disk (no loading). Raises ModelNotFound with every place looked."""
    cfg = cfg or load_config()
    if role not in cfg.roles:
        raise KeyError(f"unknown model role '{role}'; known: {sorted(cfg.roles)}")
    spec = cfg.roles[role]
    looked: list[str] = []
    candidates: list[tuple[str, Path | None, str]] = []
    var = f"VA_MODEL_{role.upper()}"
    env = os.environ.get(var)
    if env:  # an explicit choice: never silently replaced by another source
        p = Path(env).expanduser()
        if not p.exists():
            raise ModelNotFound(role, [f"{var}={env} (absent)"],
                                f"point {var} at an existing model file or folder, or unset it to use the configured sources")
        return Resolved(role, spec.kind, p, "env", _size(p), dict(spec.options))
    if spec.path:
        p = paths.resolve(spec.path)
        candidates.append(("path", p, f"path {p}"))
    if spec.package:
        found = importlib.util.find_spec(spec.package.name)
        if found and found.origin:
            p = Path(found.origin).parent / spec.package.subpath
            candidates.append(("package", p, f"package {spec.package.name}: {p}"))
        else:
            candidates.append(("package", None, f"package {spec.package.name} (not installed)"))
    if spec.parts and not any(p is not None and p.exists() for _, p, _ in candidates):
        p, label = _assembled(spec.parts)  # assembles on first use, so only when nothing earlier is there
        candidates.append(("assembled", p, label))
    if spec.fetched:
        p = paths.cache() / spec.fetched
        candidates.append(("fetched", p, f"model cache {p}"))
    if spec.system:
        exe = shutil.which(spec.system)
        candidates.append(("system", Path(exe) if exe else None, f"system program {spec.system} on PATH"))
    for origin, p, label in candidates:
        if p is not None and p.exists():
            return Resolved(role, spec.kind, p, origin, _size(p), dict(spec.options))
        looked.append(label + ("" if p is None else " (absent)"))
    raise ModelNotFound(role, looked or ["(no source configured)"], spec.how_to_get or spec.upstream)


class AssembleError(Exception):
    """The parts of a split model do not make the expected whole (sha256 mismatch, a part missing)."""


def _package_dir(name: str, subpath: str = "") -> Path | None:
    found = importlib.util.find_spec(name)
    return Path(found.origin).parent / subpath if found and found.origin else None


def _assembled(parts: PartsSource) -> tuple[Path | None, str]:
    """(the assembled folder, or None when it cannot be made; a label for ModelNotFound).
    Assembles it into the model cache on first use when every part's package is installed."""
    dest = paths.cache() / parts.into
    if (dest / parts.file).is_file():
        return dest, f"assembled {dest}"
    dirs = [_package_dir(n, parts.subpath) for n in parts.packages]
    absent = [n for n, d in zip(parts.packages, dirs) if d is None]
    if absent:
        return None, f"parts {', '.join(parts.packages)} ({', '.join(absent)} not installed)"
    try:
        assemble(parts, [d for d in dirs if d is not None], dest)
    except (AssembleError, OSError) as err:
        return None, f"parts {', '.join(parts.packages)} -> {dest} ({err})"
    return dest, f"assembled {dest}"


def assemble(parts: PartsSource, dirs: list[Path], dest: Path) -> Path:
    """Concatenate ``<file>.part*`` of each folder (in order) into ``dest/<file>``, checking the
    sha256 of the whole before it appears (so the file's presence means it was verified); copy the
    folders' other files beside it. Raises AssembleError on a missing part or a wrong checksum."""
    chunks: list[Path] = []
    for d in dirs:
        found = sorted(d.glob(f"{parts.file}.part*"))
        if len(found) != 1:
            raise AssembleError(f"expected one {parts.file}.part* in {d}, found {len(found)}")
        chunks.append(found[0])
    dest.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        for f in d.iterdir():
            if f.is_file() and not f.name.startswith(parts.file) and not (dest / f.name).exists():
                shutil.copyfile(f, dest / f"{f.name}.{os.getpid()}.partial")
                os.replace(dest / f"{f.name}.{os.getpid()}.partial", dest / f.name)
    tmp = dest / f"{parts.file}.{os.getpid()}.partial"
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != parts.sha256:
            raise AssembleError(f"sha256 of the assembled {parts.file} is {digest.hexdigest()}, expected {parts.sha256}")
        os.replace(tmp, dest / parts.file)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


# --- one loader per role: vendor libraries are imported here, lazily --------------------------


def load_detector(res: Resolved | Path | None = None):
    """An Ultralytics YOLO model (any format it loads: .pt, .onnx, OpenVINO folder)."""
    path = res if isinstance(res, Path) else (res or resolve("detector")).path
    from ultralytics import YOLO

    return YOLO(str(path), task="detect")


def onnx_session(path: Path | str, threads: int = 1):
    """An ONNX Runtime CPU session with a fixed thread count that sleeps rather than spins when idle
    (the cores are shared with the other lanes). The one place sessions are configured."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class DetectorWeights:
    """A YOLO ONNX export opened without Ultralytics (so without torch): its path and class names."""

    ckpt_path: str
    names: dict[int, str]


def load_detector_weights(res: Resolved | None = None):
    """The lean handle for ONNX weights (names from the export's metadata), else :func:`load_detector`."""
    res = res or resolve("detector")
    if res.path.suffix != ".onnx":
        return load_detector(res)
    import ast

    meta = onnx_session(res.path).get_modelmeta()
    raw = meta.custom_metadata_map.get("names")
    if not raw:
        return load_detector(res)  # not an Ultralytics export: let Ultralytics make sense of it
    return DetectorWeights(str(res.path), {int(k): str(v) for k, v in ast.literal_eval(raw).items()})


def load_asr(res: Resolved | None = None, **overrides: Any):
    """A faster-whisper WhisperModel on the CPU."""
    res = res or resolve("asr")
    from faster_whisper import WhisperModel

    opts = {**res.options, **overrides}
    return WhisperModel(str(res.path), device="cpu", compute_type=opts.get("compute_type", "int8"),
                        cpu_threads=int(opts.get("cpu_threads", 2)), local_files_only=True)


def load_embedder(res: Resolved | None = None):
    """A sentence-transformers model on the CPU."""
    res = res or resolve("embedder")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(res.path), device="cpu", local_files_only=True)


def load_slm(res: Resolved | None = None, **overrides: Any):
    """A llama.cpp model (any GGUF)."""
    res = res or resolve("slm")
    from llama_cpp import Llama

    opts = {**res.options, **overrides}
    threads = int(opts.get("n_threads", 2))
    # prompt evaluation uses the same fixed threads (llama.cpp's default is every core, which stalls
    # badly on shared cores)
    return Llama(model_path=str(res.path), n_ctx=int(opts.get("n_ctx", 1024)), n_threads=threads,
                 n_threads_batch=int(opts.get("n_threads_batch", threads)), n_batch=int(opts.get("n_batch", 512)),
                 seed=int(opts.get("seed", 0)), verbose=False)
