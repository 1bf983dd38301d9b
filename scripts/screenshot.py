"""README screenshots: the dashboard mid-run (docs/screenshot.png) and projector mode
(docs/screenshot-present.png), plus the page's live drawing numbers.

Starts `li2 serve` on a free port with a temporary data dir, opens the page in headless
Debian chromium, runs the cold default (the `lecture` preset) at a lecture-friendly speed cap,
and captures the page once the run is well past its first stage change; then opens the same
run in projector mode (?present=1) at 1280x720 and captures the first view.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png]
        [--present-out docs/screenshot-present.png] [--speed 30] [--at-step 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.frontend.helpers import (  # noqa: E402  (after the path fix)
    CHROMIUM,
    CHROMIUM_ARGS,
    ServerProcess,
    li2,
    open_dashboard,
    set_field,
    wait_for,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    ap.add_argument("--present-out", type=Path, default=ROOT / "docs" / "screenshot-present.png")
    ap.add_argument("--speed", default="30", help="steps/s cap for the run")
    ap.add_argument("--at-step", type=int, default=120, help="capture once this step is drawn")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="li2-shot-") as tmp:
        srv = ServerProcess(Path(tmp) / "data", log=Path(tmp) / "server.log").start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                open_dashboard(page, srv.url)  # the cold default: the lecture preset
                set_field(page, "max_steps_per_s", args.speed)
                page.click("#start")
                wait_for(page, "window.__li2.lastStep >= 0", 180)
                r0, t0 = li2(page, "redraws"), time.monotonic()
                wait_for(page, f"window.__li2.drawnStep >= {args.at_step}", 120)
                r1, t1 = li2(page, "redraws"), time.monotonic()
                time.sleep(0.6)  # let the throttled heavy panels catch up with this step
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                lat = sorted(li2(page, "latencies") or [0.0])
                e2e = sorted(li2(page, "endToEnd") or [])
                print(json.dumps({
                    "screenshot": str(args.out),
                    "step": li2(page, "lastStep"),
                    "stage": li2(page, "stage"),
                    "training_steps_per_s": li2(page, "stepsPerS"),
                    "redraws_per_s": round((r1 - r0) / (t1 - t0), 2),
                    "latency_median_ms": round(lat[len(lat) // 2], 1),
                    "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
                    "latency_samples": len(lat),
                    "worker_to_screen_median_ms": round(e2e[len(e2e) // 2], 1) if e2e else None,
                }))
                # the same run, on the projector: the first view at 1280x720, nothing else
                room = browser.new_page(viewport={"width": 1280, "height": 720})
                room.goto(f"{srv.url}/?present=1&run={li2(page, 'runId')}")
                room.wait_for_function("window.__li2 && window.__li2.ready === true")
                wait_for(room, f"window.__li2.lastStep >= {args.at_step} && "
                               "window.__li2.stage !== null", 120)
                time.sleep(1.0)
                room.screenshot(path=str(args.present_out))
                print(json.dumps({"screenshot": str(args.present_out)}))
                browser.close()
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
