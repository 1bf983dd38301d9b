import json
import subprocess
import sys

import pytest

from li2cli.main import main


def test_train_json_summary_and_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--set", "group=Z11", "--set", "hidden=32", "--set", "steps=30",
               "--set", "snapshot_every=10", "--out", str(out), "--json", "--quiet"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["config"]["group"] == "Z11"
    assert set(summary["first_step"]) == {"test_acc>=0.5", "test_acc>=0.9", "test_acc>=0.99",
                                          "train_acc>=0.99"}
    assert summary["steps_per_s"] > 0 and "final" in summary
    for name in ("config.json", "metrics.csv", "metrics.jsonl", "summary.json", "stages.jsonl"):
        assert (out / name).exists(), name
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == [
        "step_000000.npz", "step_000010.npz", "step_000020.npz", "step_000030.npz"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 31


def test_train_preset_deep_generalises_with_stages_on_both_layers(tmp_path, capsys):
    """What issue 15 must show: `li2 train --preset deep --json` (about 2 s on one core)."""
    out = tmp_path / "deep"
    rc = main(["train", "--preset", "deep", "--out", str(out), "--json", "--quiet",
               "--threads", "1"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["config"]["depth"] >= 2 and summary["outcome"] == "generalised"
    assert {s["layer"] for s in summary["stages"]} >= {1, 2}
    assert summary["engine_used"] == "autograd"
    stages = [json.loads(line) for line in (out / "stages.jsonl").read_text().splitlines()]
    assert {s["layer"] for s in stages} == {1, 2}


@pytest.mark.parametrize("args,needle", [
    (["--set", "depth=5"], "depth"),
    (["--set", "depth=2", "--set", "top_layer=ridge"], "top_layer"),
    (["--set", "hidden=99999"], "hidden"),
    (["--set", "group=Q8x"], "group"),
    (["--preset", "nope"], "unknown preset"),
    (["--set", "lr"], "key=value"),
])
def test_bad_input_gets_a_message_not_a_traceback(args, needle, capsys):
    rc = main(["train", *args, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err


def test_help_lists_commands():
    res = subprocess.run([sys.executable, "-m", "li2cli", "--help"], capture_output=True,
                         text=True, check=True)
    for cmd in ("train", "serve", "sweep", "presets"):
        assert cmd in res.stdout


def test_li2core_imports_nothing_above_it():
    """The library is importable alone: no module of li2core imports server, li2cli or fastapi."""
    import ast
    from pathlib import Path

    import li2core

    above = ("server", "li2cli", "fastapi", "uvicorn", "frontend")
    for path in Path(li2core.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            for name in names:
                assert name.split(".")[0] not in above, f"{path.name} imports {name}"


@pytest.mark.parametrize("command", [["train", "--help"], ["sweep", "--list"], ["presets"]])
def test_train_and_sweep_do_not_load_the_server(command):
    code = ("import contextlib, sys; from li2cli.main import main\n"
            f"with contextlib.suppress(SystemExit): main({command!r})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('server', 'fastapi', 'uvicorn', 'starlette')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout + res.stderr
