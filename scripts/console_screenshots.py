"""Take the screenshots of docs/console/ with the same headless Chromium the tests use.

Starts a frozen simulator (1,000 devices, as the demo) and the exporter with a config file in a
temporary directory (bench/bench_console.py's stack), makes two console edits (a custom
description, an interval) so the pages show them, then saves one PNG per page.

    .venv/bin/python scripts/console_screenshots.py          # writes docs/console/*.png
"""

from __future__ import annotations

import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_console import console_stack  # noqa: E402
from browser import chromium  # noqa: E402

OUT = ROOT / "docs" / "console"
DEVICE = "dev-000003"
PAGES = {
    "endpoints": "/console/endpoints",
    "devices": "/console/devices?sort=id",
    "device": f"/console/device?id={DEVICE}",
    "authorization": "/console/authorization",
    "destinations": "/console/destinations",
    "alarms": "/console/alarms",
    "settings": "/console/settings",
}


def post(url: str, **form: str) -> None:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, headers={"Origin": url.split("/console")[0]})
    with urllib.request.urlopen(request, timeout=30):
        pass


def main() -> None:
    tail = "display_names: {devices: {dev-000007: Albany rack 1}}\n"
    with console_stack(1000, tail) as (base, _):
        post(f"{base}/console/devices/description", device_id=DEVICE,
             description="KXYZ Denver rack 3")  # fmt: skip
        post(f"{base}/console/endpoints/alarms", interval="15s")
        time.sleep(2)  # let "… s ago" read like a running exporter
        OUT.mkdir(parents=True, exist_ok=True)
        for width, suffix in ((1400, ""), (400, "-phone")):
            with chromium(width=width, height=900) as driver:
                for name, path in PAGES.items():
                    if suffix and name not in ("endpoints", "devices"):
                        continue
                    driver.get(base + path)
                    driver.save_screenshot(str(OUT / f"{name}{suffix}.png"))
                    print(OUT / f"{name}{suffix}.png")


if __name__ == "__main__":
    main()
