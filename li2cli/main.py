"""The ``li2`` command: train a run, serve the dashboard, run a sweep.

It lives above both floors: ``train``/``sweep`` import only li2core, ``serve`` loads the
server (and FastAPI) only when asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from li2core.config import RunConfig

T = TypeVar("T")


def parse_sets(pairs: list[str]) -> dict:
    """``key=value`` pairs; values that parse as JSON (numbers, lists) are taken as JSON."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "config"
        lines.append(f"  {field}: {err['msg']}")
    return "invalid config:\n" + "\n".join(lines)


def build_config(preset: str | None, sets: list[str]) -> RunConfig:
    from li2core.presets import get_preset

    base = get_preset(preset).model_dump() if preset else {}
    return RunConfig(**{**base, **parse_sets(sets)})


def build_or_explain(command: str, build: Callable[[], T],
                     describe: Callable[[ValidationError], str]) -> T | None:
    """``build()``, or None (the command then exits 2) after printing why it failed: a
    pydantic error through ``describe``, a KeyError or ValueError (bad --set) by its message."""
    try:
        return build()
    except ValidationError as exc:  # first: a ValidationError is also a ValueError
        print(f"{command}: {describe(exc)}", file=sys.stderr)
    except (KeyError, ValueError) as exc:
        print(f"{command}: {exc.args[0] if exc.args else exc}", file=sys.stderr)
    return None


def use_threads(threads: int) -> None:
    """--threads: torch's thread count; 0 keeps torch's default (all cores)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from li2core.runfolder import RunFolder
    from li2core.train import train

    config = build_or_explain("li2 train", lambda: build_config(args.preset, args.set or []),
                              format_validation_error)
    if config is None:
        return 2
    use_threads(args.threads)
    from li2core.fused import bf16_warning

    if warning := bf16_warning(config.precision, config.device):
        print(f"li2 train: warning: {warning}", file=sys.stderr)
    out = Path(args.out) if args.out else Path("runs") / (
        time.strftime("%Y%m%d-%H%M%S") + f"-{args.preset or config.group}")
    folder = RunFolder(out)
    bar = tqdm(total=config.steps, file=sys.stderr, unit="step", dynamic_ncols=True,
               disable=args.quiet, mininterval=0.5)
    summary = None
    start = 0  # a fork would start later; train() reports absolute steps
    try:
        for event in train(config, max_steps_per_s=args.max_steps_per_s):
            folder.write(event)
            if event.kind == "metrics":
                bar.set_postfix(train=f"{event.train_acc:.3f}", test=f"{event.test_acc:.3f}",
                                sps=f"{event.steps_per_s:.0f}", refresh=False)
                bar.update(event.step - start - bar.n)
            elif event.kind == "stage":
                where = f" (layer {event.layer})" if config.depth > 1 else ""
                bar.write(f"step {event.step}: stage -> {event.stage}{where}")
            elif event.kind == "finished":
                summary = event.summary
    except KeyboardInterrupt:
        print("li2 train: interrupted; partial run kept in " + str(out), file=sys.stderr)
        return 130
    finally:
        bar.close()
        folder.close()
    print(f"run folder: {out}", file=sys.stderr)
    if args.json:
        print(json.dumps({**summary, "run_dir": str(out)}, default=float))
    else:
        final = summary["final"]
        print(f"final step {final.get('step')}: train acc {final.get('train_acc', 0):.4f}, "
              f"test acc {final.get('test_acc', 0):.4f}, {summary['steps_per_s']:.1f} steps/s")
        print("first steps: " + json.dumps(summary["first_step"]))
    return 0


def cmd_presets(args) -> int:
    from li2core.presets import PRESETS

    for name, (desc, cfg) in PRESETS.items():
        print(f"{name:12s} {desc}")
        if args.verbose:
            print("             " + json.dumps(cfg.model_dump(exclude_none=True)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="li2", description="A live laboratory for grokking "
                                     "(Li2 theory): train, serve the dashboard, sweep.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_train = sub.add_parser("train", help="train one run and write a run folder")
    p_train.add_argument("--preset", help="start from a named preset (see `li2 presets`)")
    p_train.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a config field (repeatable)")
    p_train.add_argument("--out", help="run folder (default runs/<time>-<name>)")
    p_train.add_argument("--json", action="store_true",
                         help="print the summary as one JSON object on the last line")
    p_train.add_argument("--threads", type=int, default=0, help="torch threads (default: all)")
    p_train.add_argument("--max-steps-per-s", type=float, default=None,
                         help="throttle (for demos)")
    p_train.add_argument("--quiet", action="store_true", help="no progress bar")
    p_presets = sub.add_parser("presets", help="list the named presets")
    p_presets.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("serve", help="start the dashboard server (li2 serve --help)", add_help=False)
    sub.add_parser("sweep", help="run a sweep of runs (li2 sweep --help)", add_help=False)

    # serve and sweep own their flags; hand them the rest of the line untouched
    if argv and argv[0] in ("serve", "sweep"):
        if argv[0] == "serve":
            from server.cli import serve_command

            return serve_command(argv[1:])
        from .sweep import main as sweep_main

        return sweep_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "presets":
        return cmd_presets(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
