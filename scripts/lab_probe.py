"""The lab check's client: talks to a served li2lab over HTTP and the websocket, from outside.

Each command prints one line for people on stderr and the values scripts/lab-check.sh reads on
stdout; it exits non-zero, naming what was wrong, when the server does not behave.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from websockets.sync.client import connect

# a run that is still training when the stack is stopped: the lecture, slowed down and long
LONG_STEPS, LONG_RATE = 100_000, 20


class ProbeError(Exception):
    pass


def http(base: str, path: str, body: dict | None = None, timeout: float = 10) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise ProbeError(f"{req.method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None


def lecture_config(base: str) -> dict:
    presets = {p["name"]: p["config"] for p in http(base, "/api/presets")}
    if "lecture" not in presets:
        raise ProbeError(f"no lecture preset in /api/presets: {sorted(presets)}")
    return presets["lecture"]


def create_run(base: str, config: dict, max_steps_per_s: float | None = None) -> str:
    query = "" if max_steps_per_s is None else f"?max_steps_per_s={max_steps_per_s}"
    return http(base, "/api/runs" + query, config)["id"]


def stream(base: str, run_id: str, until_rows: int | None = None, timeout: float = 300) -> dict:
    """Follow /ws/runs/{id} until `finished` (or until `until_rows` metric rows arrived)."""
    url = base.replace("http", "ws", 1) + f"/ws/runs/{run_id}?since=0"
    rows, steps, binary, stages, seen = 0, [], 0, [], {}
    deadline = time.monotonic() + timeout
    with connect(url, open_timeout=10, max_size=None) as ws:
        while True:
            frame = ws.recv(timeout=max(1.0, deadline - time.monotonic()))
            if isinstance(frame, bytes):
                binary += 1
                continue
            msg = json.loads(frame)
            seen[msg["type"]] = seen.get(msg["type"], 0) + 1
            if msg["type"] == "metrics":
                rows += len(msg["rows"])
                steps += [r["step"] for r in msg["rows"]]
                if until_rows is not None and rows >= until_rows:
                    return {"rows": rows, "status": "running", "messages": seen}
            elif msg["type"] == "stage":
                stages.append(msg["stage"])
            elif msg["type"] == "finished":
                if steps != sorted(set(steps)):
                    raise ProbeError(f"run {run_id}: metric rows out of order or repeated")
                return {"rows": rows, "status": msg["status"], "stages": stages,
                        "snapshots": binary, "messages": seen, "summary": msg["summary"]}
            elif msg["type"] == "error":
                raise ProbeError(f"run {run_id}: {msg['message']}")


def cmd_health(args) -> None:
    health = http(args.base, "/api/health", timeout=4)
    if health.get("status") != "ok":
        raise ProbeError(f"/api/health: {health}")
    print(f"/api/health: {json.dumps(health)}", file=sys.stderr)


def cmd_lecture(args) -> None:
    """Create the lecture run over HTTP and follow it over the websocket to `finished`."""
    t0 = time.monotonic()
    run_id = create_run(args.base, lecture_config(args.base))
    got = stream(args.base, run_id)
    if got["status"] != "completed" or got["rows"] == 0:
        raise ProbeError(f"run {run_id} ended {got['status']!r} with {got['rows']} rows")
    final = (got["summary"] or {}).get("final") or {}
    print(f"lecture run {run_id} streamed over the websocket to finished/{got['status']} in "
          f"{time.monotonic() - t0:.1f} s: {got['rows']} metric rows, {got['snapshots']} snapshot "
          f"frames, stages {' → '.join(got['stages'])}; final train/test acc "
          f"{final.get('train_acc', float('nan')):.3f}/{final.get('test_acc', float('nan')):.3f}",
          file=sys.stderr)
    print(run_id, got["rows"])


def cmd_kept(args) -> None:
    """The finished run is listed, completed, with every one of its rows."""
    listed = {r["id"]: r for r in http(args.base, "/api/runs")}
    if args.run_id not in listed:
        raise ProbeError(f"run {args.run_id} is not listed by /api/runs")
    status = listed[args.run_id]["status"]
    rows = len(http(args.base, f"/api/runs/{args.run_id}/metrics")["rows"])
    replayed = stream(args.base, args.run_id, timeout=60)
    if status != "completed" or rows != args.rows or replayed["rows"] != args.rows:
        raise ProbeError(f"run {args.run_id}: listed {status!r}, {rows} stored rows and "
                         f"{replayed['rows']} replayed, expected completed with {args.rows}")
    print(f"run {args.run_id} kept: listed {status}, {rows}/{args.rows} rows over HTTP and "
          f"the websocket replay", file=sys.stderr)


def cmd_start_long(args) -> None:
    """Start a long, throttled run and return once it is streaming rows."""
    config = {**lecture_config(args.base), "steps": LONG_STEPS}
    run_id = create_run(args.base, config, LONG_RATE)
    got = stream(args.base, run_id, until_rows=5, timeout=120)
    status = http(args.base, f"/api/runs/{run_id}")["status"]
    if status != "running":
        raise ProbeError(f"run {run_id} is {status!r} after {got['rows']} rows, not running")
    print(f"long run {run_id} running ({got['rows']}+ rows streamed)", file=sys.stderr)
    print(run_id)


def cmd_status(args) -> None:
    run = http(args.base, f"/api/runs/{args.run_id}")
    print(f"run {args.run_id}: {run['status']} ({run['error']})", file=sys.stderr)
    print(json.dumps({"status": run["status"], "error": run["error"]}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lab_probe", description=__doc__.splitlines()[0])
    p.add_argument("base", help="the server's URL, e.g. http://127.0.0.1:8000")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("health").set_defaults(fn=cmd_health)
    sub.add_parser("lecture").set_defaults(fn=cmd_lecture)
    kept = sub.add_parser("kept")
    kept.add_argument("run_id")
    kept.add_argument("rows", type=int)
    kept.set_defaults(fn=cmd_kept)
    sub.add_parser("start-long").set_defaults(fn=cmd_start_long)
    status = sub.add_parser("status")
    status.add_argument("run_id")
    status.set_defaults(fn=cmd_status)
    args = p.parse_args(argv)
    args.base = args.base.rstrip("/")
    try:
        args.fn(args)
    except (ProbeError, OSError, TimeoutError) as exc:
        print(f"lab_probe {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
