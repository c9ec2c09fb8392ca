"""The browser tests' gate: Chromium and Playwright present, or a skip (a failure in CI)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from voxstack.testing.browser import CHROMIUM


def require_browser() -> None:
    """Skip without Chromium, unless VOXSTACK_REQUIRE_BROWSER is set (CI): then fail."""
    problem = None if Path(CHROMIUM).exists() or shutil.which(CHROMIUM) else f"no Chromium at {CHROMIUM}"
    if problem is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed"
    if problem:
        if os.environ.get("VOXSTACK_REQUIRE_BROWSER"):
            pytest.fail(f"a browser is required here (VOXSTACK_REQUIRE_BROWSER is set): {problem}")
        pytest.skip(problem)
