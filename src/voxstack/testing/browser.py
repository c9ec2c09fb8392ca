"""Headless Chromium (Debian's package) driven by Playwright, with a WAV file as its microphone (tests, benches)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("VOXSTACK_CHROMIUM", "/usr/bin/chromium")


@contextmanager
def chromium(microphone: Path | None = None) -> Iterator[Any]:
    """A browser context allowed the microphone; ``microphone`` is the WAV it hears (played once)."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream"]
    if microphone is not None:
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}%noloop"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 860})
            yield context
        finally:
            browser.close()


def until(page: Any, expression: str, timeout: float = 60, what: str = "") -> Any:
    """Poll ``expression`` in the page until it is truthy; its value. (The pages' CSP forbids eval, which
    Playwright's wait_for_function needs, so this asks with evaluate.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(f"() => {expression}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or expression} did not happen within {timeout} s")
        time.sleep(0.1)


def watch_errors(page: Any) -> list[str]:
    """The page's uncaught errors (and console errors) as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors
