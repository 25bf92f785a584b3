"""Time and peak memory of a piece of code, measured in a fresh child process from /proc/self/status (Linux).

The child runs `setup` (imports: not measured), resets its peak (VmHWM) to its current resident size through
/proc/self/clear_refs, runs `body`, and reports the wall time and how far the peak rose. Where the reset is not
allowed, the peak after `setup` is the baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CHILD = """
import json, time
{setup}

def _status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0

try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    _base = _status("VmRSS")
except OSError:
    _base = _status("VmHWM")
_started = time.perf_counter()
_error = None
try:
{body}
except Exception as _caught:
    _error = f"{{type(_caught).__name__}}: {{_caught}}"
_seconds = time.perf_counter() - _started
print(json.dumps({{"seconds": _seconds, "base": _base, "peak": _status("VmHWM"), "error": _error}}))
"""


@dataclass(frozen=True)
class Measured:
    """What running a body took: wall seconds, resident bytes before it and at its peak, the error it raised."""

    seconds: float
    base_bytes: int
    peak_bytes: int
    error: str | None

    @property
    def growth_bytes(self) -> int:
        """Return how far the peak resident size rose above the baseline while the body ran."""
        return max(0, self.peak_bytes - self.base_bytes)


def measure_in_child(setup: str, body: str, timeout_s: float = 600) -> Measured:
    """Return the time and peak-memory growth of `body` run after `setup` in a fresh Python process."""
    code = _CHILD.format(setup=textwrap.dedent(setup), body=textwrap.indent(textwrap.dedent(body), "    "))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=timeout_s, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the measured child failed (exit {done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Measured(report["seconds"], report["base"], report["peak"], report["error"])
