"""Imported by the local runner's forkserver: compiles (or loads) li2core's numba loops once, so
each forked run starts with them ready instead of paying ~0.4 s (cached) to ~5 s (first use)."""

from __future__ import annotations

import logging

from li2core import batched_kernels, kernels, torch_exact

try:
    kernels.warm_up()
    torch_exact.warm_up()  # the batched engine's centring and Adam, where they serve
    batched_kernels.warm_up()  # the batched engine's fp32 step, where it serves
except Exception:  # a failed warm-up must not take the forkserver down: runs compile lazily
    logging.getLogger(__name__).exception("warming up li2core's compiled loops failed")
