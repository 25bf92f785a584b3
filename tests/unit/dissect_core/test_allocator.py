"""glibc malloc tuning for a dissection's process."""

from __future__ import annotations

import platform
import sys

import pytest

from dissect_core.allocator import tune_allocator


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_tuning_succeeds_on_glibc_and_is_idempotent():
    assert tune_allocator() is True
    assert tune_allocator() is True
