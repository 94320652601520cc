"""Keep every model library offline: nothing downloads at run time unless the user asks.

Hugging Face, sentence-transformers, Ultralytics and whisper all try the network on first use;
these variables make them use local files or fail fast. Set before those libraries are imported.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "YOLO_OFFLINE": "True",
    "YOLO_VERBOSE": "False",
    # Ultralytics tries to pip-install missing requirements at run time; never let it.
    "YOLO_AUTOINSTALL": "False",
    "ULTRALYTICS_AUTOINSTALL": "False",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # keep library chatter (weight-loading bars) out of our progress output
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    # FFmpeg inside OpenCV prints decoder complaints ("partial file", "Invalid NAL unit size") on stderr;
    # a video that ends early is reported by the commands in one line instead (-8: AV_LOG_QUIET;
    # set OPENCV_FFMPEG_LOGLEVEL=16 to see them)
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}


def enforce() -> None:
    """Set the offline switches unless the user has set them explicitly."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
