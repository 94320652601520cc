"""Process memory settings of the runtime."""

import subprocess
import sys


def test_malloc_arenas_can_be_capped_on_glibc():
    code = "from vehicle_assist.memory import cap_malloc_arenas as c; print(c(2), c(0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
