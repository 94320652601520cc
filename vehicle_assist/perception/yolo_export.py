"""Any-size input for a fixed-size YOLOv8 ONNX export, derived once from the same weights.

The fetched detector (``yolov8n_fp32.onnx``) was exported at 320x320: its head reshapes to a fixed
2100 anchors and carries anchor constants for that size, so ONNX Runtime refuses any other input.
The network before the head is fully convolutional (upsampling by scale, not by size), so cutting
the graph at the head's last convolutions and declaring the input's height and width symbolic gives
the same network at any size that is a multiple of 32. The cut-off part (distribution-focal-loss
box decoding, anchors, sigmoid) is a few lines of numpy in :func:`decode`.

The derived file is cached beside the model cache (``paths.cache()/models``), named by the source
file's size and modification time and :data:`EXPORT_VERSION`; the derivation needs the ``onnx``
package, the run only ONNX Runtime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from vehicle_assist import paths

EXPORT_VERSION = 3
DFL_OUTPUT = "dfl_weights"
REG_MAX = 16
"""Bins of YOLOv8's distribution-focal-loss box regression (4 x 16 channels per anchor)."""


class ExportError(Exception):
    """The weights cannot be given a dynamic input (not a YOLOv8-style head, or no ``onnx`` package)."""


def cached_path(src: Path) -> Path:
    st = src.stat()
    key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{int(st.st_mtime)}|v{EXPORT_VERSION}".encode()).hexdigest()[:16]
    return paths.cache() / "models" / f"{src.stem}-anysize-{key}.onnx"


def head_outputs(model) -> list[str]:
    """Names of the head's last 4-D tensors (before its reshapes), finest level first: per level,
    either one tensor of 4*REG_MAX + classes channels or a box tensor and then a class tensor."""
    g = model.graph
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producers = {o: n for n in g.node for o in n.output}
    out = []
    for n in g.node:
        if n.op_type != "Reshape" or n.input[0] not in producers:
            continue
        prod = producers[n.input[0]]
        # the head's reshapes flatten conv outputs (h, w -> anchors); the bias reshapes take initializers
        if prod.op_type in ("Conv", "Add", "Concat") and n.input[0] not in out:
            outs_of = [c.op_type for c in consumers.get(n.output[0], [])]
            if "Concat" in outs_of:
                out.append(n.input[0])
    if len(out) not in (3, 6):
        raise ExportError(f"not a YOLOv8 detection head: found {len(out)} head tensors")
    return _by_level(model, out)


def _by_level(model, names: list[str]) -> list[str]:
    """``names`` ordered finest level first and, within a level, the box map (4*REG_MAX channels)
    before the class map. Exports differ in graph order: Ultralytics 8.4.33 concatenates box and
    class per level (box0, cls0, box1, ...), 8.4.190 all box maps, then all class maps."""
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - no shapes: keep the graph order (the older layout)
        return names
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    shapes = [dims.get(n) for n in names]
    if any(s is None or len(s) != 4 or not s[2] for s in shapes):
        return names
    return [n for _, n in sorted(zip(shapes, names), key=lambda x: (-x[0][2], x[0][1] != 4 * REG_MAX))]


def derive(src: Path, dst: Path) -> Path:
    """Write the any-size copy of ``src`` to ``dst``."""
    try:
        import onnx
        from onnx import helper, utils
    except ImportError as err:  # pragma: no cover - onnx is a declared dependency
        raise ExportError("the onnx package is needed to derive an any-size detector") from err
    model = onnx.load(str(src))
    names = head_outputs(model)
    inp = model.graph.input[0].name
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp.onnx")
    full = tmp.with_suffix(".full.onnx")
    # the extractor needs shapes; drop the fixed intermediate ones, then extract the sub-graph
    del model.graph.value_info[:]
    dim = model.graph.input[0].type.tensor_type.shape.dim
    dim[2].Clear()
    dim[2].dim_param = "height"
    dim[3].Clear()
    dim[3].dim_param = "width"
    onnx.save(model, str(full))
    try:
        utils.extract_model(str(full), str(tmp), [inp], names, check_model=False)
        sub = onnx.load(str(tmp))
        # the DFL projection's weights (0..15 in the trained model; a requantised export shifts them
        # slightly): an extra output, so the numpy decode uses exactly the export's numbers
        dfl = next((n for n in model.graph.node if n.op_type == "Conv" and "dfl" in n.name), None)
        inits = {i.name: i for i in model.graph.initializer}
        if dfl is not None and dfl.input[1] in inits:
            sub.graph.initializer.append(inits[dfl.input[1]])
            sub.graph.node.append(helper.make_node("Identity", [dfl.input[1]], [DFL_OUTPUT]))
            sub.graph.output.append(helper.make_tensor_value_info(DFL_OUTPUT, onnx.TensorProto.FLOAT, None))
        del sub.metadata_props[:]
        sub.metadata_props.extend(model.metadata_props)
        onnx.save(sub, str(tmp))
        tmp.replace(dst)
    finally:
        full.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return dst


def ensure(src: Path) -> Path:
    """The cached any-size copy of ``src``, derived first if absent."""
    dst = cached_path(Path(src))
    if not dst.is_file():
        derive(Path(src), dst)
    return dst


def decode(outputs: list[np.ndarray], n_classes: int, strides: tuple[int, ...] = (8, 16, 32),
           bins: np.ndarray | None = None):
    """Head maps -> (boxes cx, cy, w, h in input pixels (A, 4), class logits (C, A)).

    ``outputs`` per level: one (1, 64 + C, h, w) map, or a (1, 64, h, w) box map and a (1, C, h, w)
    class map. ``bins``: the DFL projection (default 0..15). The same maths as Ultralytics'
    ``Detect`` + ``DFL``; the sigmoid is left to the caller (only for the classes it keeps).
    """
    proj = (np.arange(REG_MAX, dtype=np.float32) if bins is None else np.asarray(bins, np.float32).reshape(-1))
    per_level = len(outputs) // len(strides)
    boxes, scores = [], []
    for li, s in enumerate(strides):
        maps = outputs[li * per_level:(li + 1) * per_level]
        x = maps[0][0] if per_level == 1 else np.concatenate([m[0] for m in maps], 0)
        c, h, w = x.shape
        x = x.reshape(c, h * w)
        dist = x[:4 * REG_MAX].reshape(4, REG_MAX, h * w)
        dist = np.exp(dist - dist.max(1, keepdims=True))
        dist = (dist * proj[None, :, None]).sum(1) / dist.sum(1)  # (4, A) l,t,r,b
        gy, gx = np.mgrid[0:h, 0:w]
        ax, ay = gx.reshape(-1) + 0.5, gy.reshape(-1) + 0.5
        x1, y1, x2, y2 = ax - dist[0], ay - dist[1], ax + dist[2], ay + dist[3]
        boxes.append(np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1) * s)
        scores.append(x[4 * REG_MAX:4 * REG_MAX + n_classes])
    logits = np.concatenate(scores, 1)
    return np.concatenate(boxes, 0).astype(np.float32), logits


__all__ = ["DFL_OUTPUT", "EXPORT_VERSION", "ExportError", "cached_path", "decode", "derive", "ensure", "head_outputs"]
