"""What the challenger-vs-champion review adds to evaluate, per full-resolution val pair, and
how heavy the page is.

The review collector (``components/evaluation/review.py``) sees two outputs per pair that evaluate has
already computed; its own work is the champion's full-resolution CIEDE2000, four previews,
the difference map and heatmap, and the crops. This times it on the real listing photos in
../shared/real-inputs (about 3300x2200), with two different tone edits standing in for the
two versions (the collector's cost does not depend on the model), then renders the page
(``components/evaluation/review_page.py``) for them and reports its size.

    .venv/bin/python bench/review_cost.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from components.config import ReviewConfig
    from components.data.imageio import load_rgb
    from components.evaluation.review import ReviewCollector
    from components.evaluation.review_page import write_review_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12, help="evaluate.review.photos")
    args = parser.parse_args()
    collector = ReviewCollector(ReviewConfig(photos=args.photos))
    seconds = []
    for path in sorted((REPO.parent / "shared" / "real-inputs").glob("*.jpg")):
        lq = load_rgb(path).astype(np.float32) / 255
        challenger, champion, gt = lq ** 0.7, lq ** 0.8 * 1.05, np.clip(lq ** 0.72, 0, 1)
        start = time.perf_counter()
        collector(path.stem, lq, gt, {"psnr": 0.0, "champion_psnr": 0.0, "ciede2000_mean": 0.0},
                  {"served": (challenger, 0.0), "champion": (np.clip(champion, 0, 1), 0.0)})
        seconds.append(time.perf_counter() - start)
        print(f"{path.name} {lq.shape[1]}x{lq.shape[0]}: {seconds[-1]:.2f} s", flush=True)
    info = {"version": "2", "created": "-", "tags": {}, "mode": "global_view", "params": {}}
    with tempfile.TemporaryDirectory() as tmp:
        page = write_review_page(collector.result(), info, {**info, "version": "1"}, "brighthouse",
                                 Path(tmp) / "review.html")
        size = page.stat().st_size
    print(f"review work per pair: median {statistics.median(seconds):.2f} s over {len(seconds)} photos; "
          f"page with {len(collector.photos)} photos: {size / 1e6:.1f} MB ({size / 1e6 / len(collector.photos):.2f} MB each)")


if __name__ == "__main__":
    main()
