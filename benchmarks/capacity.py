"""A class on one server: N simulated students each start the `lecture` preset at once.

For each runner (local processes, Ray) a real `python -m server` on 127.0.0.1 (its own data
dir, default max_jobs = the runner's CPUs) gets N POST /api/runs at the same moment, one
X-Client-Id per student; the script then polls until every run ended and prints the time until
the last one started and the last one finished. Then a sweep of >= 32 cells per runner.
Usage: .venv/bin/python benchmarks/capacity.py [--students 30] [--runners local ray]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from streaming import ServerProcess  # noqa: E402 - the benchmarks' own server helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from li2core.presets import get_preset  # noqa: E402

LECTURE = get_preset("lecture").model_dump()
# 4 seeds x 8 train fractions of a small group: 32 cells, one batched job
SWEEP = {"name": "capacity", "base": {"group": "Z23", "hidden": 64, "steps": 300,
                                      "snapshot_every": 50},
         "grid": {"seed": [0, 1, 2, 3],
                  "train_fraction": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}}
TIMEOUT_S = 1800


def request(server: ServerProcess, method: str, path: str, body: dict | None = None,
            client: str = "bench") -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.base + path, data=data, method=method, headers={
        "Content-Type": "application/json", "X-Client-Id": client})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def wait_ended(server: ServerProcess, path: str, deadline: float) -> dict:
    while time.monotonic() < deadline:
        view = request(server, "GET", path)
        if view["status"] not in ("queued", "running"):
            return view
        time.sleep(0.5)
    raise RuntimeError(f"{path} did not end within {TIMEOUT_S} s")


def a_class(server: ServerProcess, students: int) -> dict:
    """Everyone presses start at once; times are the server's own started/finished stamps."""
    gate, ids, errors = threading.Barrier(students + 1), [None] * students, []

    def student(i: int) -> None:
        gate.wait()
        try:
            ids[i] = request(server, "POST", "/api/runs", LECTURE, client=f"student-{i}")["id"]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=student, args=(i,)) for i in range(students)]
    for t in threads:
        t.start()
    t0 = time.time()
    gate.wait()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} students were refused: {errors[0]}")
    deadline = time.monotonic() + TIMEOUT_S
    runs = [wait_ended(server, f"/api/runs/{run_id}", deadline) for run_id in ids]
    assert all(r["status"] == "completed" for r in runs), [r["error"] for r in runs]
    starts = [seconds(r["started_at"]) - t0 for r in runs]
    ends = [seconds(r["finished_at"]) - t0 for r in runs]
    return {"last_start_s": max(starts), "last_finish_s": max(ends),
            "median_wait_s": statistics.median(starts),
            "run_s": statistics.median(e - s for s, e in zip(starts, ends))}


def a_sweep(server: ServerProcess) -> dict:
    t0 = time.time()
    sweep = request(server, "POST", "/api/sweeps", SWEEP)
    view = wait_ended(server, f"/api/sweeps/{sweep['id']}", time.monotonic() + TIMEOUT_S)
    assert view["status"] == "completed", view["error"]
    return {"cells": view["run_count"], "wall_s": seconds(view["finished_at"]) - t0,
            "counts": view["counts"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--runners", nargs="+", default=["local", "ray"],
                        choices=["local", "ray"])
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.students <= 64:
        parser.error("--students: 1 to 64 (the server queues at most 64 runs)")
    print(f"{args.students} students start `lecture` (Z59, K=512, 400 steps) at once")
    for runner in args.runners:
        with tempfile.TemporaryDirectory() as data:
            server = ServerProcess(Path(data), LI2_RUNNER=runner, LI2_QUOTA="2")
            try:
                health = request(server, "GET", "/api/health")
                cls = a_class(server, args.students)
                print(f"{runner:>5} runner, max_jobs {health['max_jobs']}, load average "
                      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: last start "
                      f"{cls['last_start_s']:.1f} s, last finish {cls['last_finish_s']:.1f} s, "
                      f"median wait {cls['median_wait_s']:.1f} s, median run "
                      f"{cls['run_s']:.1f} s", flush=True)
                if not args.no_sweep:
                    sw = a_sweep(server)
                    print(f"{runner:>5} runner: sweep of {sw['cells']} cells in "
                          f"{sw['wall_s']:.1f} s ({sw['counts']})", flush=True)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
