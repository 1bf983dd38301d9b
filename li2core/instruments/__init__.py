"""The instruments of li2-theory §4, computed from the live network, and the Probe that runs them.

``make_probe(config, data)`` returns an ``InstrumentProbe``: scalars at every eval row (cadence-
bound groups carry their last value), arrays at snapshot steps, stage changes from
li2core.stages. Everything is read under ``torch.no_grad`` from detached tensors, so probing
never changes the training trajectory. Names and shapes: docs/events.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from .. import kernels
from ..config import RunConfig
from ..data import GroupDataset
from ..events import StageChange
from ..irreps import component_power, isotypic_components
from ..stages import StageDetector
from .cadence import GROUPS, cadences
from .duplication import DuplicationTracker
from .energy import memorising, node_energy, random_baseline
from .gradient import (
    ForwardSums,
    forward_sums,
    gradient_stats,
    motion,
    output_residual,
    tangential,
    weight_ascent,
)
from .hidden import HiddenBlocks
from .ridge import DIAG_SUBSET, paper_eta, ridge_and_diagonality
from .spectra import coverage_stats, node_spectra, nodes_per_component

__all__ = ["InstrumentProbe", "make_probe"]


def make_probe(config: RunConfig, data: GroupDataset) -> InstrumentProbe:
    """The full instrument set for one run (per layer for depth ≥ 2)."""
    if config.depth > 1:
        from .deep import DeepProbe  # imports li2core.layer_stages, which imports this package

        return DeepProbe(config, data)
    return InstrumentProbe(config, data)


def _energy_star(group, activation: str) -> float:
    from ..theory import energy_star

    return float(energy_star(group, activation))


class InstrumentProbe:
    """Implements li2core.train.Probe; ``timings`` holds (seconds, calls) per instrument group."""

    def __init__(self, config: RunConfig, data: GroupDataset):
        self.config, self.data = config, data
        self.m, self.k = data.order, config.hidden
        self.comps = isotypic_components(data.group)
        self.n_components = self.comps.count
        self.n = data.n_train
        self._place(data.a.device)
        self.eta = paper_eta(config, self.n)
        self.cadence = cadences(self.n, data.n_test, self.m, self.k, config.eval_every,
                                config.snapshot_every)
        e_star = _energy_star(data.group, config.activation)
        self.e_ref_full = e_star
        self.e_ref_train = e_star * (self.n / self.m**2) ** 2
        self.baseline = random_baseline(self.train_rows, self.table_rows, self.y_tr, self.label,
                                        config.activation, self.e_ref_train, self.e_ref_full,
                                        config.seed)
        gen = torch.Generator().manual_seed(config.seed)  # own stream: training RNG untouched
        self.subset = (torch.randperm(self.k, generator=gen)[:DIAG_SUBSET].sort().values
                       .to(self.device) if self.k > self.n and self.k > DIAG_SUBSET else None)
        self.values: dict[str, float] = {}
        self.timings: dict[str, list[float]] = {}
        self.start: int | None = None
        self.end: int | None = None
        self.detector: StageDetector | None = None
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None
        self._cache_step: int | None = None
        self._cache: dict = {}
        self._nodes_per_component: list[int] = [0] * self.n_components
        self._fresh: set[str] = set()
        self._inherited: list[dict] = []
        self._fork: dict = {}
        self._given: tuple | None = None  # the training step's own forward parts, if handed
        self._bg_rows: tuple[HiddenBlocks, HiddenBlocks] | None = None  # for arrays_job
        self._dup = DuplicationTracker(self.comps)

    def inherit(self, stages: list[dict], fork: dict) -> None:
        """A fork continues its parent's stage history ({"step", "stage", "evidence"} up to the
        fork step); ``fork`` = {"run_id", "step"} says where it forked."""
        self._inherited, self._fork = list(stages), dict(fork)

    def _place(self, device) -> None:
        """Index tensors and row blocks on ``device`` (train() may move the data after a
        probe was built on the CPU, e.g. by make_probe(config, make_dataset(...)))."""
        d = self.data.to(device)
        tr = d.train_idx
        self.device = torch.device(device)
        self._bg_rows = None
        self.a_tr, self.b_tr, self.y_tr, self.label = d.a[tr], d.b[tr], d.label[tr], d.label
        self.train_rows = HiddenBlocks(self.a_tr, self.b_tr, self.m)
        self.table_rows = HiddenBlocks(d.a, d.b, self.m)
        if getattr(self, "subset", None) is not None:
            self.subset = self.subset.to(device)

    @property
    def fresh(self) -> frozenset[str]:
        """Scalars computed at the last eval row (the others carry an older value)."""
        return frozenset(self._fresh)

    # -- Probe protocol ---------------------------------------------------------------------
    def wants_forward(self, step: int) -> bool:
        """Whether this step's G_F group (or the final snapshot, which has no ∂J/∂W from the
        step) reads the training rows' forward pass: the step then keeps it (TrainState)."""
        if self.start is None or step == self.end:
            return True
        return (step - self.start) % self.cadence["gradient"] == 0

    def scalars(self, state, row: dict[str, float]) -> dict[str, float]:
        """Run every group that is due at this eval row; return all values known so far."""
        if self.start is None:
            self.start, self.end = state.step, state.step + self.config.steps
            self.detector = StageDetector(self.n_components, self.end, order=self.m,
                                          inherited=self._inherited, fork=self._fork)
        if state.w.device != self.device:
            self._place(state.w.device)
        final = state.step == self.end
        self._fresh = set()
        self._given = getattr(state, "forward", None)
        with torch.no_grad():
            w, v = state.w.detach(), state.v.detach()
            for g in GROUPS:
                if final or (state.step - self.start) % self.cadence[g.name] == 0:
                    t0 = time.perf_counter()
                    new = getattr(self, "_" + g.name)(state.step, w, v)
                    self._tick(g.name, time.perf_counter() - t0)
                    self.values.update(new)
                    self._fresh.update(new)
        return dict(self.values)

    def arrays(self, state) -> dict[str, np.ndarray]:
        """Spectra, per-node flags and energies, and the gradient's spectrum at a snapshot."""
        if state.w.device != self.device:
            self._place(state.w.device)
        t0 = time.perf_counter()
        with torch.no_grad():
            w, v = state.w.detach(), state.v.detach()
            ns = self._spectra_at(state.step, w)
            energy = self._energy_at(state.step, w)
            grad = getattr(state, "grad_w", None)
            if grad is None:
                self._given = getattr(state, "forward", None)
                resid = output_residual(self._forward_at(state.step, w, v).out, self.y_tr,
                                        self.config.loss)
                ascent = weight_ascent(self.train_rows, w, v, resid, self.config.activation)
            else:  # the training step's own ∂J/∂W at these weights: the ascent is −∂J/∂W
                ascent = -grad
            arrays = self._snapshot_arrays(w, v, ns, energy, ascent)
        self._tick("snapshot", time.perf_counter() - t0)
        return arrays

    def arrays_job(self, state) -> Callable[[], dict[str, np.ndarray]] | None:
        """``arrays(state)`` as a function of copies, safe to run on another thread while
        training goes on; None where it must run now (no ∂J/∂W from the step to reuse)."""
        grad = getattr(state, "grad_w", None)
        if grad is None or state.w.device != self.device:
            return None
        step = state.step
        w, v, ascent = state.w.detach().clone(), state.v.detach().clone(), grad.neg()
        cached = self._cache if self._cache_step == step else {}
        ns, energy = cached.get("spectra"), cached.get("energy")
        if self._bg_rows is None:  # own block buffers: HiddenBlocks reuses its buffer
            d = self.data.to(self.device)
            self._bg_rows = (HiddenBlocks(self.a_tr, self.b_tr, self.m),
                             HiddenBlocks(d.a, d.b, self.m))

        def job() -> dict[str, np.ndarray]:
            t0 = time.perf_counter()
            with torch.no_grad():
                spectra = ns if ns is not None else node_spectra(self.comps, w)
                arrays = self._snapshot_arrays(
                    w, v, spectra, energy if energy is not None else self._energies(
                        w, *self._bg_rows), ascent)
            self._tick("snapshot", time.perf_counter() - t0)
            return arrays
        return job

    def _snapshot_arrays(self, w, v, ns, energy, ascent) -> dict[str, np.ndarray]:
        e_tr, e_full = energy
        asc = tangential(ascent, w)
        gp = (component_power(self.comps, asc[:self.m])
              + component_power(self.comps, asc[self.m:])).sum(dim=0)
        tot = float(gp.sum())
        out = {
            "spec_u": ns.spec_u, "spec_v": ns.spec_v,
            "spec_V": component_power(self.comps, v.T),
            "concentration": ns.concentration, "dominant": ns.dominant, "active": ns.active,
            # the per-node verdicts, so viewers never re-derive (and drift from) the rules
            "locked": ns.locked,
            "memorising": memorising(e_tr, e_full, ns.active, self.baseline),
            "energy_train": e_tr, "energy_full": e_full,
            "gf_spectrum": gp / tot if tot > 0 else gp,
        }
        return {name: t.detach().cpu().numpy().astype(np.float32) for name, t in out.items()}

    def stages(self, state, row: dict[str, float]) -> list[StageChange]:
        t0 = time.perf_counter()
        out = self.detector.update(row, self._fresh) if self.detector is not None else []
        self._tick("stages", time.perf_counter() - t0)
        return out

    def summary(self) -> dict:
        from ..theory import predict_verdict
        from ..vocabulary import agreement

        outcome = self.detector.final_outcome() if self.detector is not None else None
        verdict = predict_verdict(self.config)["verdict"]
        return {
            "coverage": self.values.get("coverage"),
            "coverage_max": self.values.get("coverage_max"),
            "concentration": self.values.get("conc_mean"),
            "nodes_per_component": self._nodes_per_component,
            "outcome": outcome,  # li2core.vocabulary outcome key
            "verdict": verdict,
            "agreement": agreement(verdict, outcome),  # the theory card's "came true" or not
        }

    # -- instrument groups (each returns its scalars) -----------------------------------------
    def _motion(self, step, w, v) -> dict[str, float]:
        """1 − cos between this eval's W (V) and the previous eval's."""
        prev = self._prev
        if prev is not None and kernels.instruments_usable(w) and w.is_contiguous() \
                and v.is_contiguous():
            # one pass per tensor that also refreshes the stored copy (0.7 → ~0.1 ms at fig3)
            return {"w_motion": kernels.motion_update(w, prev[0]),
                    "v_motion": kernels.motion_update(v, prev[1])}
        self._prev = (w.clone(), v.clone())
        if prev is None:
            return {}
        return {"w_motion": motion(w, prev[0]), "v_motion": motion(v, prev[1])}

    def _spectra(self, step, w, v) -> dict[str, float]:
        ns = self._spectra_at(step, w)
        out = coverage_stats(ns)
        out["coverage_max"] = max(out["coverage"], self.values.get("coverage_max", 0.0))
        self._nodes_per_component = nodes_per_component(ns, self.n_components)
        return out

    def _duplication(self, step, w, v) -> dict[str, float]:
        return self._dup.update(self._spectra_at(step, w), w)

    def _gradient(self, step, w, v) -> dict[str, float]:
        norm, align = gradient_stats(self._forward_at(step, w, v), v, self.y_tr, self.config.loss)
        return {"gf_norm": norm, "gf_align": align}

    def _energy(self, step, w, v) -> dict[str, float]:
        e_tr, e_full = self._energy_at(step, w)
        act = self._spectra_at(step, w).active
        sel = e_full[act] if bool(act.any()) else e_full
        q = torch.quantile(sel.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64,
                                                      device=sel.device))
        return {"energy_q10": float(q[0]), "energy_q50": float(q[1]), "energy_q90": float(q[2]),
                "memorising_nodes": float(memorising(e_tr, e_full, act, self.baseline).sum())}

    def _ridge(self, step, w, v) -> dict[str, float]:
        f = torch.empty(self.n, self.k, dtype=w.dtype, device=w.device)
        for sl, _, fb in self.train_rows.blocks(w, self.config.activation):
            f[:, sl] = fb
        gap, diag = ridge_and_diagonality(f, self.y_tr, v, self.eta, self.subset)
        if self.config.loss == "cross_entropy":
            return {"diag_ratio": diag}  # V* is the mse optimum: no yardstick for softmax
        return {"ridge_gap": gap, "diag_ratio": diag}

    # -- shared intermediates, computed at most once per step ---------------------------------
    def _cached(self, step, key, fn):
        if self._cache_step != step:
            self._cache_step, self._cache = step, {}
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def _spectra_at(self, step, w):
        return self._cached(step, "spectra", lambda: node_spectra(self.comps, w))

    def _forward_at(self, step, w, v):
        if self._given is not None:  # exact: the step's own pass at these weights
            return self._cached(step, "forward", lambda: ForwardSums(*self._given))
        return self._cached(step, "forward", lambda: forward_sums(
            self.train_rows, w, v, self.y_tr, self.config.activation))

    def _energy_at(self, step, w):
        return self._cached(step, "energy", lambda: self._energies(w, self.train_rows,
                                                                   self.table_rows))

    def _energies(self, w, train_rows: HiddenBlocks, table_rows: HiddenBlocks):
        act = self.config.activation
        e_tr = node_energy(train_rows, w, self.y_tr, act) / self.e_ref_train
        e_full = node_energy(table_rows, w, self.label, act) / self.e_ref_full
        return e_tr, e_full

    def _tick(self, name: str, seconds: float) -> None:
        t = self.timings.setdefault(name, [0.0, 0])
        t[0] += seconds
        t[1] += 1
