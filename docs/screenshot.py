"""Screenshot of a run's HTML report in the system's headless Chromium (the picture in the README).

    python docs/screenshot.py gen_measures_out docs/report.png

Writes ``RUN_DIR/report.html`` first when it is missing (``gen-measures report RUN_DIR``), then
opens it exactly as the report test does (``tests/browser.py``: network blocked, console errors
reported) and saves the top ``--height`` pixels of the page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen_measures.pipeline import report  # noqa: E402
from tests.browser import open_page  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="output folder of gen-measures run (holding results.sqlite)")
    parser.add_argument("png", help="the screenshot to write")
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--height", type=int, default=1900)
    args = parser.parse_args()
    html = Path(args.run_dir) / "report.html"
    if not html.is_file():
        report(args.run_dir)
    check = open_page(html, args.png, width=args.width, height=args.height)
    print(f"wrote {args.png}: {len(check.images)} images, {len(check.sections)} task sections, "
          f"{len(check.errors)} console errors")
    return 1 if check.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
