"""Open an HTML file in a real headless Chromium (Playwright driving the system's browser).

Used by the report test and by ``docs/screenshot.py``. The browser is the system package
(``apt-get install chromium``; ``.ci/run`` installs it where it is missing), found on ``PATH``
or named by ``GEN_MEASURES_CHROMIUM``; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of the system Chromium, or ``None``."""
    named = os.environ.get("GEN_MEASURES_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    """What the browser saw: console errors and page errors, every ``<img>``'s
    ``(complete, naturalWidth, naturalHeight)``, the ids of ``section.task`` elements, and every
    URL the page requested other than itself."""

    errors: list[str] = field(default_factory=list)
    images: list[tuple[bool, int, int]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def open_page(html_path: str | Path, screenshot: str | Path | None = None, *, width: int = 1300,
              height: int = 1000, full_page: bool = False) -> PageCheck:
    """Load ``html_path`` from disk in headless Chromium, with the network blocked, and report what happened."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("no Chromium found: apt-get install chromium, or set GEN_MEASURES_CHROMIUM")
    url = Path(html_path).resolve().as_uri()
    check = PageCheck()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda msg: check.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: check.errors.append(f"page error: {exc}"))

            def block(route):
                if route.request.url != url and not route.request.url.startswith("data:"):
                    check.requests.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", block)
            page.goto(url, wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            check.images = [tuple(x) for x in page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")]
            check.sections = page.eval_on_selector_all("section.task", "els => els.map(e => e.id)")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    return check
