"""Where numba caches the compiled kernels: NUMBA_CACHE_DIR when set, and no crash when nothing is writable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

REPO = Path(__file__).resolve().parents[4]
USE_KERNEL = (
    "import numpy as np\n"
    "from dissect_core.similarity.kernel import row_sums_float64\n"
    "print(row_sums_float64(np.ones((3, 4), dtype=np.float32)).tolist())\n"
)


def run_kernel(**env: str) -> subprocess.CompletedProcess[str]:
    """Return the outcome of importing and calling a kernel in a fresh process with `env` added."""
    return subprocess.run(
        [sys.executable, "-c", USE_KERNEL],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_numba_cache_dir_is_honoured(tmp_path: Path) -> None:
    done = run_kernel(NUMBA_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0 and done.stdout.strip() == "[4.0, 4.0, 4.0]", done.stderr
    cached = {path.suffix for path in tmp_path.rglob("kernel.*")}
    assert {".nbi", ".nbc"} <= cached, sorted(tmp_path.rglob("*"))


@pytest.mark.slow
def test_no_writable_cache_folder_compiles_without_crashing() -> None:
    if not hasattr(numba.core.config, "CACHE_LOCATOR_CLASSES"):
        pytest.skip(f"numba {numba.__version__} cannot be told which cache locators to try")
    # A locator that never applies outside IPython stands for a read-only install without a home folder.
    done = run_kernel(NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator")
    assert done.returncode == 0 and done.stdout.strip() == "[4.0, 4.0, 4.0]", done.stderr
    assert "set NUMBA_CACHE_DIR to a writable folder" in done.stderr
