"""Process memory settings for long runs: cap glibc's malloc arenas.

glibc gives each thread that allocates concurrently its own malloc arena (up to 8 per core), and
freed memory in an arena is rarely returned; with a detector, ASR, TTS and SLM worker threads that
is 80-100 MiB of resident memory over a drive (docs/runtime.md). ``mallopt(M_ARENA_MAX, n)`` at
start-up caps the count, as ``MALLOC_ARENA_MAX=n`` would, for arenas created afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_ARENA_MAX = -8  # from glibc's malloc.h


def cap_malloc_arenas(n: int) -> bool:
    """Cap glibc malloc arenas at ``n`` (0: leave as is); False when not on glibc or refused."""
    if n <= 0:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_ARENA_MAX, int(n)) == 1


__all__ = ["cap_malloc_arenas"]
