"""``li2 sweep``: expand a sweep, train it with a progress bar, write outcomes.csv, sweep.json."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from li2core.phase_boundary import fit_constant, measured_boundaries
from li2core.sweep import SWEEP_FIELDS, SweepConfig, run_sweep
from li2core.sweep_presets import SWEEP_PRESETS, get_sweep_preset
from li2core.theory import P_CRIT_CONSTANT

from .main import build_or_explain, parse_sets, use_threads

LETTERS = {"generalised": "G", "memorised": "M", "still_learning": "S", "not_fitted": "F",
           "diverged": "D", "not_run": "."}


def format_sweep_error(exc: ValidationError) -> str:
    """One line per problem: ``base.lr: …`` for a field, the grid point for a combination."""
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {where}: {msg}" if where else f"  {msg}")
    return "invalid sweep:\n" + "\n".join(lines)


def parse_axis_value(text: str):
    """A number when it parses as one (JSON), else the string (group specs)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_axis(arg: str, flag: str) -> tuple[str, list]:
    """``key=v1,v2,…`` or ``key=start:stop:step`` (inclusive arithmetic range)."""
    key, sep, values = arg.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ValueError(f"{flag} expects key=v1,v2,... or key=start:stop:step, got {arg!r}")
    if key not in SWEEP_FIELDS:
        raise ValueError(f"{flag} {key}: not a sweep axis; choose from {', '.join(SWEEP_FIELDS)}")
    if values.count(":") == 2 and "," not in values:
        start, stop, step = (float(x) for x in values.split(":"))
        if step <= 0 or stop < start:
            raise ValueError(f"{flag} {key}: range needs start <= stop and step > 0")
        count = math.floor((stop - start) / step + 1e-9) + 1
        out = [round(start + i * step, 10) for i in range(count)]
        return key, [int(x) if x.is_integer() and key in ("hidden", "seed") else x for x in out]
    return key, [parse_axis_value(v.strip()) for v in values.split(",")]


def build_sweep(args) -> SweepConfig:
    """Preset (or defaults), then --set on the base run, --grid axes, --zip axes."""
    sweep = get_sweep_preset(args.preset) if args.preset else SweepConfig()
    base = {**sweep.base.model_dump(), **parse_sets(args.set or [])}
    grid, zipped = dict(sweep.grid), dict(sweep.zipped)
    new_zip = dict(parse_axis(a, "--zip") for a in args.zip or [])
    if new_zip:
        zipped = new_zip
        for key in new_zip:
            grid.pop(key, None)
    for arg in args.grid or []:
        key, values = parse_axis(arg, "--grid")
        if key in zipped:
            raise ValueError(f"--grid {key}: the preset varies {key} together with "
                             f"{', '.join(k for k in zipped if k != key) or 'nothing'}; "
                             "replace all of them with --zip key=... (one per field)")
        grid[key] = values
    for key in set(grid) | set(zipped):
        base.pop(key, None)  # an axis overrides the base value anyway; keep the dump tidy
    return SweepConfig(name=sweep.name if args.preset else "sweep", base=base, grid=grid,
                       zipped=zipped)


def phase_table(sweep: SweepConfig, results) -> list[str]:
    """Columns: train_fraction (else the last axis); rows: the other axes; one letter per seed."""
    axes = [k for k in sweep.axis_names if k != "seed"]
    if not axes:
        return []
    col = "train_fraction" if "train_fraction" in axes else axes[-1]
    others = [k for k in axes if k != col]
    cols = list(dict.fromkeys(r.point[col] for r in results))
    if col == "train_fraction":
        cols.sort()
    rows: dict[tuple, dict] = {}
    for r in results:
        cells = rows.setdefault(tuple(r.point[k] for k in others), {c: "" for c in cols})
        cells[r.point[col]] += LETTERS[r.outcome]
    width = max([len(f"{c:g}" if isinstance(c, float) else str(c)) for c in cols]
                + [len(v) for cells in rows.values() for v in cells.values()]) + 2
    labels = {key: ", ".join(f"{k}={v}" for k, v in zip(others, key, strict=True))
              for key in rows}
    label_w = max([len(x) for x in labels.values()] + [len(col)]) + 2
    lines = [f"{col:<{label_w}}" + "".join(
        f"{(f'{c:g}' if isinstance(c, float) else str(c)):>{width}}" for c in cols)]
    for key, cells in rows.items():
        lines.append(f"{labels[key]:<{label_w}}" + "".join(f"{cells[c]:>{width}}" for c in cols))
    lines.append("G generalised, M memorised, S still learning, F not yet fitted, D diverged "
                 "(one letter per seed)")
    return lines


def write_outputs(out: Path, sweep: SweepConfig, results, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in results]
    with open(out / "outcomes.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.json").write_text(json.dumps(
        {"sweep": sweep.model_dump(), "runs": rows, **report}, indent=1, default=float))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="li2 sweep", description="Train a grid of runs (batched) and classify each outcome "
        "(docs/sweeps.md).")
    parser.add_argument("--preset", help="start from a sweep preset (see --list)")
    parser.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                        help=f"an axis ({', '.join(SWEEP_FIELDS)}); values or start:stop:step")
    parser.add_argument("--zip", action="append", metavar="KEY=V1,V2",
                        help="axes varied together (equal lengths), e.g. group with hidden")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a base config field for every run (repeatable)")
    parser.add_argument("--out", help="output folder (default runs/sweep-<time>-<name>)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON object on the last line")
    parser.add_argument("--list", action="store_true", help="list the sweep presets and exit")
    parser.add_argument("--one-by-one", action="store_true",
                        help="train each run alone with train() instead of batching")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.list:
        for name, (desc, sw) in SWEEP_PRESETS.items():
            print(f"{name:14s} {sw.run_count:4d} runs  {desc}")
        return 0
    sweep = build_or_explain("li2 sweep", lambda: build_sweep(args), format_sweep_error)
    if sweep is None:
        return 2
    use_threads(args.threads)
    from tqdm import tqdm

    from li2core.fused import bf16_warning

    if warning := bf16_warning(sweep.base.precision, sweep.base.device):
        print(f"li2 sweep: warning: {warning}", file=sys.stderr)
    out = Path(args.out) if args.out else Path("runs") / (
        time.strftime("%Y%m%d-%H%M%S") + f"-sweep-{sweep.name}")
    total = sum(c.steps for c in sweep.configs())
    bar = tqdm(total=total, file=sys.stderr, unit="run-step", unit_scale=True,
               dynamic_ncols=True, disable=args.quiet, desc=f"{sweep.run_count} runs")
    t0 = time.perf_counter()
    try:
        results = run_sweep(sweep, batched=not args.one_by_one, on_steps=bar.update)
    except KeyboardInterrupt:
        print("li2 sweep: interrupted", file=sys.stderr)
        return 130
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    counts = {o: sum(r.outcome == o for r in results) for o in LETTERS if o != "not_run"}
    report: dict = {"seconds": round(elapsed, 2), "counts": counts}
    if "train_fraction" in sweep.axis_names:
        bounds = measured_boundaries(results)
        c = fit_constant(bounds)
        report["boundaries"] = [b.as_dict() for b in bounds]
        report["fit_c"] = c
    write_outputs(out, sweep, results, report)
    print(f"sweep folder: {out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"out": str(out), "runs": [r.row() for r in results], **report},
                         default=float))
        return 0
    for line in phase_table(sweep, results):
        print(line)
    print(f"{sweep.run_count} runs in {elapsed:.1f} s: "
          + ", ".join(f"{n} {o}" for o, n in counts.items() if n))
    for b in report.get("boundaries", []):
        where = (f"p* = {b['p_star']:.4f} (between {b['p_low']:g} and {b['p_high']:g})"
                 if b["p_star"] is not None else "p* outside the swept range")
        print(f"{b['group']:>8}: {where}; theory p_crit = {b['p_crit']:.4f}")
    if report.get("fit_c") is not None:
        print(f"fit p* = c·ln M / M: c = {report['fit_c']:.3f} (theory {P_CRIT_CONSTANT})")
    return 0
