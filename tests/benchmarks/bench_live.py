"""Live estimates while unloading: how long after a layer's frames are posted its estimate is
visible, with six lines posting layer by layer at once, beside the bare model forward pass.

Seed 000 (section 6.2) budgets about a second per layer on the CPU. In one run:

- a production model is trained here (the configured backbone, efficientnet_lite0 at 224 px by
  default, with few epochs: latency does not depend on how good the heads are);
- gunicorn (README's production shape, 3 sync workers) takes the posts, and a real Celery worker
  on the `live` queue (prefork, concurrency 2, as README runs it) scores;
- six lines (L1-L6) open a synthetic unloading each (operations/synth.py, 1280x720 frames) and
  post its layers one at a time, all at once: each posts its next layer as soon as the previous
  one's estimate is visible. Per layer: from the start of the append POST to the moment the
  estimate over that many layers is visible in the database (polled every 10 ms);
- baseline, on the same keyframes in this process, one at a time: decode the keyframe, run the
  backbone on it, and the heads over the bag so far (mlloop.features + mlloop.scoring.predict).

The latency includes the POST itself (upload, checksums, the quality checks of the layer's
frames, the keyframe pick), the broker hop and the task (model from the per-process cache,
features of the new keyframe, heads, the write and its audit event). Two warm-up unloadings
first, so that the worker's processes have the model and the backbone loaded (a worker's first
task pays for loading them once).

Run with `bin/bench live [--layers N] [--frames-per-layer N]`.
"""

# ruff: noqa: E402 -- Django must be set up before the models are imported.

import argparse
import http.client
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDIA = Path(tempfile.mkdtemp(prefix="bench-live-media-"))
os.environ["MEDIA_ROOT"] = str(MEDIA)

from tests.benchmarks.common import bench_environment, describe_machine, setup_django

setup_django(MEDIA_ROOT=str(MEDIA), CELERY_TASK_ALWAYS_EAGER="0")

import numpy as np
import torch
from django.contrib.auth.models import Group, User
from django.db import connection
from guardian.shortcuts import assign_perm
from rest_framework.authtoken.models import Token

from labeling.models import Layer, Line, Railcar
from mlloop import registry
from mlloop.features import extractor, load_image
from mlloop.models import ModelVersion
from mlloop.scoring import predict_many
from operations.models import LiveEstimate
from operations.synth import write_unloadings
from scrapannot.celery import app as celery_app
from scrapannot.roles import Role
from tests.faults import ROOT, Gunicorn
from tests.labeling import factories
from tests.mlloop.model_factories import frozen_dataset, splits, train_run

LINES = tuple(f"L{n}" for n in range(1, 7))
AIM_S = 1.0


@dataclass
class Layered:
    """A synthetic unloading split into its layers' frame entries and bytes."""

    railcar: str
    line: str
    camera: str
    started_at: str
    layers: list[tuple[list[dict[str, Any]], dict[str, bytes]]]


def synthetic(folder: Path, *, railcars: int, layers: int, per_layer: int, seed: int) -> list:
    truths = write_unloadings(
        out_dir=folder, railcars=railcars, seed=seed, defect_share=0.0, width=1280, height=720,
        layers=(layers, layers), frames_per_layer=per_layer, named_layers=True,
    )  # fmt: skip
    out = []
    for n, truth in enumerate(truths):
        path = folder / truth.folder
        manifest = json.loads((path / "unloading.json").read_text())
        by_layer: dict[int, list[dict[str, Any]]] = {}
        for entry in manifest["frames"]:
            by_layer.setdefault(entry["layer"], []).append(entry)
        line = LINES[n % len(LINES)]
        out.append(
            Layered(
                railcar=f"RC-LIVE-{uuid.uuid4().hex[:10]}",
                line=line,
                camera=f"{line}-TOP-1",
                started_at=manifest["frames"][0]["captured_at"],
                layers=[
                    (entries, {e["file"]: (path / e["file"]).read_bytes() for e in entries})
                    for _, entries in sorted(by_layer.items())
                ],
            )
        )
    return out


def request(port: int, token: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Authorization": f"Token {token}", "Content-Type": content_type}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    if response.status not in (200, 201):
        raise RuntimeError(f"POST {path} answered {response.status}: {answer[:300]!r}")
    return json.loads(answer)


def multipart(entries: list[dict[str, Any]], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="manifest"\r\n\r\n'.encode()
        + json.dumps({"frames": entries}).encode()
        + b"\r\n"
    ]
    for name, data in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class LayerTiming:
    railcar_id: int
    layer: int
    eligible_layers: int
    seconds: float | None  # None: the layer had no eligible keyframe, so no new estimate
    post_seconds: float = 0.0  # the append POST alone (upload, checks, keyframe, commit)


def post_layer_by_layer(
    unloading: Layered, *, port: int, token: str, timeout: float = 60
) -> list[LayerTiming]:
    opened = request(
        port, token, "/api/v1/unloadings/open/",
        json.dumps({"railcar": unloading.railcar, "line": unloading.line,
                    "camera": unloading.camera, "started_at": unloading.started_at}).encode(),
        "application/json",
    )  # fmt: skip
    uid = opened["railcar"]
    timings = []
    eligible = 0
    railcar_id = None
    try:
        for entries, files in unloading.layers:
            body, content_type = multipart(entries, files)
            start = time.perf_counter()
            answer = request(port, token, f"/api/v1/unloadings/{uid}/frames/", body, content_type)
            posted = time.perf_counter() - start
            if railcar_id is None:
                railcar_id = Layer.objects.get(railcar__uid=uid, index=1).railcar_id
            layer = entries[0]["layer"]
            if layer not in answer["keyframes"]:
                timings.append(LayerTiming(railcar_id, layer, eligible, None, posted))
                continue
            eligible += 1
            found = LiveEstimate.objects.filter(railcar_id=railcar_id, layers_scored=eligible)
            deadline = start + timeout
            while not found.exists():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"no estimate for layer {layer} of {unloading.railcar}")
                time.sleep(0.01)
            seconds = time.perf_counter() - start
            timings.append(LayerTiming(railcar_id, layer, eligible, seconds, posted))
        request(port, token, f"/api/v1/unloadings/{uid}/close/", b"", "application/json")
    finally:
        connection.close()
    return timings


def at_once(unloadings: list[Layered], *, port: int, token: str) -> list[LayerTiming]:
    results: list[list[LayerTiming]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(unloadings))

    def run(unloading: Layered) -> None:
        try:
            barrier.wait()
            results.append(post_layer_by_layer(unloading, port=port, token=token))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(u,)) for u in unloadings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [t for timings in results for t in timings]


def bare_forward_pass(timings: list[LayerTiming], model: ModelVersion) -> list[float]:
    """Per measured layer: decode its keyframe, the backbone on it, the heads over the bag of the
    railcar's eligible keyframes so far; in this process, one at a time."""
    trained = registry.load(model)
    features = extractor(trained.config)
    out = []
    bags: dict[int, list[np.ndarray]] = {}
    for timing in sorted(timings, key=lambda t: (t.railcar_id, t.layer)):
        layer = Layer.objects.select_related("keyframe").get(
            railcar_id=timing.railcar_id, index=timing.layer
        )
        if timing.seconds is None or layer.keyframe is None:
            continue
        start = time.perf_counter()
        image = load_image(layer.keyframe)
        vector = features.extract([image], [layer.keyframe.railcar_box])[0]
        bag = bags.setdefault(timing.railcar_id, [])
        bag.append(vector)
        predict_many(trained, [np.stack(bag)])
        out.append(time.perf_counter() - start)
    return out


def production(backbone: str, image_size: int) -> ModelVersion:
    """A model trained here (its artifact under this run's media folder), made production."""
    # The training railcars' factory numbers its railcars from 1 in each process: move past the
    # ones an earlier run left in this database.
    factories._serial = itertools.count(Railcar.objects.count() + 1)
    run = train_run(
        frozen_dataset(splits(10, 4, 0)),
        backbone=backbone, image_size=image_size, epochs=4, ensemble=3, batch_size=4,
    )  # fmt: skip
    if not run.is_production:
        run = registry.promote(model_version=run, actor=None, reason="bench_live")
    return run


def plant_token() -> str:
    user, _ = User.objects.get_or_create(username="bench-live-plant")
    user.groups.add(Group.objects.get_or_create(name=Role.PLANT_SYSTEM.value)[0])
    for name in LINES:
        assign_perm("labeling.post_unloadings", user, Line.objects.get_or_create(name=name)[0])
    return Token.objects.get_or_create(user=user)[0].key


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "scrapannot", "worker", "-Q", "live",
             "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while "ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return worker


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def report(timings: list[LayerTiming], baseline: list[float], model: ModelVersion) -> None:
    measured = [t for t in timings if t.seconds is not None]
    latencies = [t.seconds for t in measured]
    skipped = len(timings) - len(measured)
    config = registry.load(model).config
    print(f"\n{describe_machine()}, torch threads {torch.get_num_threads()}")
    print(f"model v{model.number}: {config.backbone} at {config.image_size} px, "
          f"ensemble {config.ensemble}")  # fmt: skip
    lines = len({t.railcar_id for t in timings})
    print(
        f"{len(latencies)} layers measured over {lines} lines posting at once"
        + (f" ({skipped} layers without an eligible keyframe, no estimate)" if skipped else "")
    )
    header = f"{'':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    for name, values in (
        ("layer POST start -> estimate visible (live)", latencies),
        ("  of which the append POST", [t.post_seconds for t in measured]),
        ("  of which POST end -> estimate visible", [t.seconds - t.post_seconds for t in measured]),
        ("bare forward pass: decode+features+heads", baseline),
    ):
        print(
            f"{name:<44} {percentile(values, 50) * 1e3:8.0f} {percentile(values, 95) * 1e3:8.0f} "
            f"{max(values) * 1e3:8.0f}"
        )
    p95 = percentile(latencies, 95)
    ratio = statistics.median(latencies) / statistics.median(baseline)
    print(f"\nlive p50 / bare forward pass p50: {ratio:.1f}x")
    print(f"aim: under {AIM_S:.1f} s per layer (seed 000): p95 {p95:.2f} s -> "
          f"{'met' if p95 < AIM_S else 'NOT met'}")  # fmt: skip


def run(
    *, lines: int, layers: int, per_layer: int, backbone: str, image_size: int, seed: int
) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    folder = Path(tempfile.mkdtemp(prefix="bench-live-"))
    started = time.perf_counter()
    warm = synthetic(folder / "warm", railcars=2, layers=1, per_layer=per_layer, seed=seed + 1)
    unloadings = synthetic(
        folder / "synth", railcars=lines, layers=layers, per_layer=per_layer, seed=seed
    )
    model = production(backbone, image_size)
    token = plant_token()
    print(f"set-up (synthetic frames, model training): {time.perf_counter() - started:.0f} s")
    env = {**os.environ, **bench_environment(), "MEDIA_ROOT": str(MEDIA),
           "CELERY_TASK_ALWAYS_EAGER": "0"}  # fmt: skip
    celery_app.control.purge()
    web = Gunicorn(env, folder / "gunicorn.log", workers=3)
    worker = None
    try:
        web.start()
        worker = start_worker(env, folder / "worker.log")
        at_once(warm, port=web.port, token=token)
        timings = at_once(unloadings, port=web.port, token=token)
    finally:
        web.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(30)
    baseline = bare_forward_pass(timings, model)
    report(timings, baseline, model)
    print(f"total: {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=6, choices=range(1, 7))
    parser.add_argument("--layers", type=int, default=4, help="layers per unloading")
    parser.add_argument("--frames-per-layer", type=int, default=3)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    run(
        lines=args.lines,
        layers=args.layers, per_layer=args.frames_per_layer, backbone=args.backbone,
        image_size=args.image_size, seed=args.seed,
    )  # fmt: skip


if __name__ == "__main__":
    main()
