"""Throughput of the frame quality checks on 1920x1080 JPEG frames, beside decoding them only.

The issue's aim: all checks together cost no more than the decode itself, i.e. (decode + checks)
/ decode <= 2.0. In one run, on the same frames (synthetic railcars from operations/synth.py with
their railcar boxes, and scikit-image photographs upscaled to 1920x1080 without a box), each round
measures:

- decode only: `cv2.imdecode`, with the flags `check_frame_bytes` uses (the baseline);
- `check_frame_bytes`: header sniffing, decode and every check, what the Celery task calls;
- the checks alone (`measure_image` on frames decoded beforehand), for the breakdown.

OpenCV runs on one thread (`cv2.setNumThreads(1)`), so frames/s are per core. The headline ratio
is the median over rounds of (check_frame_bytes time / decode time) within each round. No
database is needed: `python -m tests.benchmarks.bench_quality [--rounds N]`, or `bin/bench quality`.
"""

import argparse
import time

# ruff: noqa: E402 -- Django must be set up before operations.synth (it imports models).
from tests.benchmarks.common import (
    Measurement,
    describe_machine,
    paired_ratio,
    print_table,
    setup_django,
)

setup_django()

import cv2
import numpy as np

from labeling.quality import QualityThresholds, check_frame_bytes, measure_image
from operations import synth
from tests.labeling.quality_calibration import photo, to_frame_bytes

AIM = 2.0
PHOTOS = ("astronaut", "coffee", "motorcycle", "gravel")
Frame = tuple[bytes, tuple[float, ...] | None]


def synthetic_frames(count: int) -> list[Frame]:
    unloading = synth.render_unloading(
        rng=synth.railcar_rng(seed=7, index=0), layers=(4, 4), frames_per_layer=4, defect_share=0.3
    )
    frames = []
    for i in range(min(count, len(unloading))):
        data = synth.encode_jpeg(unloading.frame(i))
        frames.append((data, tuple(float(v) for v in unloading.railcar_boxes[i])))
    return frames


def photo_frames() -> list[Frame]:
    return [(to_frame_bytes(photo(name)), None) for name in PHOTOS]


def run(frames: list[Frame], rounds: int) -> dict[str, Measurement]:
    thresholds = QualityThresholds()
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    buffers = [np.frombuffer(data, np.uint8) for data, _ in frames]
    decoded = [cv2.imdecode(b, flags) for b in buffers]

    def decode_only() -> None:
        for b in buffers:
            cv2.imdecode(b, flags)

    def full_checks() -> None:
        for data, box in frames:
            check_frame_bytes(data, railcar_box=box, thresholds=thresholds)

    def checks_only() -> None:
        for image, (_, box) in zip(decoded, frames, strict=True):
            measure_image(image, railcar_box=box, thresholds=thresholds)

    steps = {
        "decode only (cv2.imdecode)": decode_only,
        "check_frame_bytes (decode + checks)": full_checks,
        "checks only (measure_image)": checks_only,
    }
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for fn in steps.values():
        fn()  # warm caches and OpenCV's lazy initialisation
    for r in range(rounds):
        # Alternate the order so that drift on a noisy machine does not favour one step.
        order = list(steps.items()) if r % 2 == 0 else list(reversed(steps.items()))
        for name, fn in order:
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: Measurement(name, len(frames), s) for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--synthetic", type=int, default=16, help="synthetic frames")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    sets = {"synthetic railcars": synthetic_frames(args.synthetic), "photographs": photo_frames()}
    sets["all frames"] = sets["synthetic railcars"] + sets["photographs"]
    print(f"Quality checks on 1920x1080 JPEG frames, one OpenCV thread; {describe_machine()}")
    print(f"OpenCV {cv2.__version__}, {args.rounds} rounds")
    headline = None
    for title, frames in sets.items():
        results = run(frames, args.rounds)
        decode, full = (
            results["decode only (cv2.imdecode)"],
            results["check_frame_bytes (decode + checks)"],
        )
        print_table(f"{title}: {len(frames)} frames", list(results.values()), baseline=decode)
        paired = paired_ratio(full, decode)
        print(f"(decode + checks) / decode: {paired}")
        headline = paired
    assert headline is not None
    verdict = "meets" if headline.median <= AIM else "misses"
    print(f"\nAll frames: {headline.median:.2f}x decode, {verdict} the aim of <= {AIM:.1f}x")


if __name__ == "__main__":
    main()
