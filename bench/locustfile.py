"""Locust scenario for ``brighthouse serve``: clients uploading a mix of photo sizes, with a
spike above capacity. Run by ``bench/serving_load.py`` (which prepares the photos and reads
the results); on its own:

    BRIGHTHOUSE_LOAD_PHOTOS=DIR .venv-load/bin/locust -f bench/locustfile.py --headless \
        -H http://127.0.0.1:8000 --csv out/load

DIR holds ``<class>-*.jpg`` photos; BRIGHTHOUSE_LOAD_MIX weighs the classes ("full=6,small=3,huge=1")
and BRIGHTHOUSE_LOAD_STAGES gives the shape as "seconds:users,..." (cumulative seconds).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

from locust import HttpUser, LoadTestShape, between, task


def _photos() -> dict[str, list[bytes]]:
    by_class: dict[str, list[bytes]] = {}
    for path in sorted(Path(os.environ["BRIGHTHOUSE_LOAD_PHOTOS"]).glob("*.jpg")):
        by_class.setdefault(path.name.split("-")[0], []).append(path.read_bytes())
    return by_class


def _mix() -> dict[str, float]:
    pairs = (item.split("=") for item in os.environ.get("BRIGHTHOUSE_LOAD_MIX", "full=6,small=3,huge=1").split(","))
    return {name: float(weight) for name, weight in pairs}


class PhotoClient(HttpUser):
    """A client that uploads a photo, waits for its edit, thinks for a moment, and repeats."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.photos, mix = _photos(), _mix()
        self.classes = [c for c in mix if c in self.photos]
        self.weights = [mix[c] for c in self.classes]

    @task
    def enhance(self) -> None:
        size = random.choices(self.classes, self.weights)[0]
        body = random.choice(self.photos[size])
        with self.client.post("/v1/enhance", data=body, name=f"enhance {size}", timeout=600,
                              headers={"Content-Type": "image/jpeg"}, catch_response=True) as reply:
            if reply.status_code != 200:  # 503 busy, 413 too large: counted by code in the failures table
                reply.failure(f"HTTP {reply.status_code}")


class Spike(LoadTestShape):
    """Steady load, a spike above capacity, then steady again."""

    def tick(self) -> tuple[int, float] | None:
        stages = os.environ.get("BRIGHTHOUSE_LOAD_STAGES", "90:4,150:20,210:4")
        elapsed = self.get_run_time()
        for stage in stages.split(","):
            until, users = stage.split(":")
            if elapsed < float(until):
                return int(users), 20.0
        return None
