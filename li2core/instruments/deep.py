"""The probe of a network with depth ≥ 2: layer 1's instruments as for the 2-layer network (its
G_F, ridge gap and snapshot gradient taken through the whole deeper network), plus each added
layer's spectra and G_F (li2core.instruments.layers) and stages per layer
(li2core.layer_stages)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..layer_stages import ORDER_TIE, LayerStages
from ..model import layer_outputs, mse_target
from ..stages import Thresholds
from . import InstrumentProbe
from .cadence import deep_cadences
from .layers import (
    first_layer_grad,
    gradient_scalars,
    gradient_spectra,
    layer_arrays,
    layer_gradients,
    layer_parts,
    layer_scalars,
)
from .ridge import ridge_and_diagonality


class DeepProbe(InstrumentProbe):
    """InstrumentProbe for depth ≥ 2; ``timings["layers"]`` holds the added layers' cost."""

    def __init__(self, config, data):
        super().__init__(config, data)
        self.depth = config.depth
        self.cadence = deep_cadences(self.n, data.n_test, self.m, self.k, config.depth,
                                     config.eval_every, config.snapshot_every)
        self._layers: list[torch.Tensor] = []
        self.layer_stages: LayerStages | None = None
        self._t_tr = mse_target(self.y_tr, self.m)

    def _rows(self):
        return (self.a_tr, self.b_tr, self.y_tr)

    def _table(self, step, w):
        """[x₁, …, x_L] over the whole table (row a·M + b), once per step."""
        d = self.data.to(self.device)
        return self._cached(step, "table", lambda: layer_outputs(
            w, self._layers, d.a, d.b, self.config.activation))

    def scalars(self, state, row):
        self._layers = [x.detach() for x in state.layers]
        out = super().scalars(state, row)
        if self.layer_stages is None:
            # the trend window spans at least one cadence, so that a stall or a faded G_F is
            # judged from measured values, never from values carried between two measurements;
            # onsets fall on the cadence's rows: layers that reach a stage at the same row are
            # together, a row apart (≥ ORDER_TIE steps) ordered
            every = max(self.cadence["layers"], self.cadence["gradient"])
            th = Thresholds(window=max(Thresholds().window, every))
            self.layer_stages = LayerStages(self.depth, self.n_components, self.end, self.m,
                                            self._inherited, self._fork, th, tie=ORDER_TIE)
        t0 = time.perf_counter()
        final = state.step == self.end
        if final or (state.step - self.start) % self.cadence["layers"] == 0:
            with torch.no_grad():
                new = layer_scalars(self.comps, self._table(state.step, state.w.detach()))
            self.values.update(new)
            self._fresh.update(new)
            out.update(new)
        self._tick("layers", time.perf_counter() - t0)
        return out

    def _gradient(self, step, w, v):
        """G_F of every layer, through the whole network (layer 1's names unsuffixed): from the
        training step's own backward pass when it kept them (state.forward), else computed."""
        if self._given is not None:
            return gradient_scalars(list(self._given), self.y_tr, self.m)
        return layer_gradients(w, self._layers, v, self._rows(), self.config.activation,
                               self.config.loss, self.m, self._t_tr)

    def _ridge(self, step, w, v):
        """Ridge gap and diagonality on the top layer's features x_L."""
        a, b, _ = self._rows()
        f = layer_outputs(w, self._layers, a, b, self.config.activation)[-1]
        gap, diag = ridge_and_diagonality(f, self.y_tr, v, self.eta, self.subset)
        if self.config.loss == "cross_entropy":
            return {"diag_ratio": diag}
        return {"ridge_gap": gap, "diag_ratio": diag}

    def arrays(self, state):
        self._layers = [x.detach() for x in state.layers]
        if getattr(state, "grad_w", None) is None:
            with torch.no_grad():
                grad = first_layer_grad(state.w.detach(), self._layers, state.v.detach(),
                                        self._rows(), self.config.activation, self.config.loss,
                                        self._t_tr)
            state = dataclasses.replace(state, grad_w=grad)
        out = super().arrays(state)
        t0 = time.perf_counter()
        with torch.no_grad():
            out.update(_numpy(layer_arrays(self.comps, self._table(state.step,
                                                                   state.w.detach()))))
            out.update(_numpy(self._gf_spectra(getattr(state, "forward", None), state.w,
                                               self._layers, state.v)))
        self._tick("layers", time.perf_counter() - t0)
        return out

    def _gf_spectra(self, parts, w, layers, v):
        """gf_spectrum@l from the step's own (x_l, ∂J/∂x_l) when it kept them, else computed."""
        if parts is None:
            parts = layer_parts(w.detach(), layers, v.detach(), self._rows(),
                                self.config.activation, self.config.loss, self._t_tr)
        return gradient_spectra(self.comps, list(parts), self.a_tr, self.b_tr)

    def arrays_job(self, state):
        job = super().arrays_job(state)
        if job is None:
            return None
        # this step's table pass if the scalars made one (read-only: fresh tensors each step)
        table = self._cache.get("table") if self._cache_step == state.step else None
        w, v = state.w.detach().clone(), state.v.detach().clone()
        layers = [x.detach().clone() for x in state.layers]
        parts = getattr(state, "forward", None)  # this step's, fresh tensors: read-only
        d, act = self.data.to(self.device), self.config.activation

        def deep_job():
            out = job()
            t0 = time.perf_counter()
            with torch.no_grad():
                xs = table if table is not None else layer_outputs(w, layers, d.a, d.b, act)
                out.update(_numpy(layer_arrays(self.comps, xs)))
                out.update(_numpy(self._gf_spectra(parts, w, layers, v)))
            self._tick("snapshot", time.perf_counter() - t0)  # the snapshot's thread's cost
            return out
        return deep_job

    def stages(self, state, row):
        t0 = time.perf_counter()
        out = self.layer_stages.update(row, self._fresh) if self.layer_stages else []
        self._tick("stages", time.perf_counter() - t0)
        return out

    def summary(self) -> dict:
        out = super().summary()
        ls = self.layer_stages
        if ls is None:
            return {**out, "layers": [], "layer_order": None, "layer_order_stage": None,
                    "layer_orders": {}}
        from ..vocabulary import agreement
        from .layers import at_layer

        outcome = ls.final_outcome()
        layers = [{"layer": d.layer, "stages": ls.stages_of(d.layer),
                   "coverage": self.values.get(at_layer("coverage", d.layer)),
                   "concentration": self.values.get(at_layer("conc_mean", d.layer)),
                   "stage_ii_onset": ls.onsets("independent")[d.layer - 1],
                   "stage_iii_onset": ls.onsets("interactive")[d.layer - 1]}
                  for d in ls.detectors]
        order, stage = ls.order()
        return {**out, "outcome": outcome, "agreement": agreement(out["verdict"], outcome),
                "layers": layers, "layer_order": order, "layer_order_stage": stage,
                "layer_orders": ls.orders()}


def _numpy(arrays: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: t.detach().cpu().numpy().astype(np.float32) for k, t in arrays.items()}
