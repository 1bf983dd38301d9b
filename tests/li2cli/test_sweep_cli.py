"""The ``li2 sweep`` command: outputs, phase table, bad input as messages."""

import csv
import json

import pytest

from li2cli.sweep import main as sweep_command
from li2core.sweep_presets import SWEEP_PRESETS


def test_cli_writes_csv_and_json(tmp_path, capsys):
    out = tmp_path / "sw"
    rc = sweep_command(["--preset", "smoke", "--set", "steps=250", "--grid", "seed=0",
                        "--grid", "train_fraction=0.2:0.8:0.6", "--out", str(out), "--json",
                        "--quiet"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["outcome"] for r in report["runs"]] == ["memorised", "generalised"]
    assert report["boundaries"][0]["p_star"] == pytest.approx(0.5)
    with open(out / "outcomes.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["train_fraction"] for r in rows] == ["0.2", "0.8"]
    assert {"run", "seed", "outcome", "train_acc", "test_acc", "first_test_acc_0.9",
            "steps"} <= set(rows[0])
    assert rows[0]["first_test_acc_0.9"] == "" and int(rows[1]["first_test_acc_0.9"]) <= 250
    assert json.loads((out / "sweep.json").read_text())["sweep"]["base"]["steps"] == 250


def test_cli_prints_a_phase_table(tmp_path, capsys):
    rc = sweep_command(["--preset", "smoke", "--set", "steps=100", "--out", str(tmp_path),
                        "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0 and "train_fraction" in text and "G generalised" in text


@pytest.mark.parametrize("args,needle", [
    (["--grid", "steps=1,2"], "not a sweep axis"),
    (["--grid", "lr"], "key=v1,v2"),
    (["--grid", "lr=1e-3,7"], "lr=7"),
    (["--preset", "nope"], "unknown sweep preset"),
    (["--preset", "scaling-law", "--grid", "group=Z11"], "--zip"),
    (["--set", "hidden=0"], "base.hidden"),
    (["--grid", "train_fraction=0.5:0.1:0.1"], "start <= stop"),
])
def test_cli_bad_input_gets_a_message_not_a_traceback(args, needle, capsys, tmp_path):
    rc = sweep_command([*args, "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err


def test_cli_list_names_presets(capsys):
    assert sweep_command(["--list"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in SWEEP_PRESETS)


def test_cli_bf16_sweep_runs_and_warns_without_bf16_units(tmp_path, capsys, monkeypatch):
    # bf16 on a CPU that emulates it would run slower than fp32: the sweep says so, and runs
    import li2core.fused as fused_module

    monkeypatch.setattr(fused_module, "cpu_has_bf16_units", lambda: False)
    rc = sweep_command(["--preset", "smoke", "--set", "steps=250", "--set", "precision=bf16",
                        "--grid", "seed=0", "--grid", "train_fraction=0.2:0.8:0.6",
                        "--out", str(tmp_path / "sw"), "--json", "--quiet"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "li2 sweep: warning: precision=bf16" in captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert [r["outcome"] for r in report["runs"]] == ["memorised", "generalised"]
