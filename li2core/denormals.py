"""Subnormal floats flushed to zero while li2core trains (the CPU's FTZ and DAZ modes).

Weight decay drives the weights of hidden nodes that carry no feature towards zero; after a
few thousand steps their weights, their σ(h) and their ∂J/∂h are subnormal (below 1.2e-38),
and on Intel CPUs each arithmetic instruction that meets one takes a microcode assist of a
hundred-odd cycles, in MKL's products and in the compiled loops alike. Measured on one core
of this project's Xeon (benchmarks/README.md, eighth round): a scaling-law batch whose runs
generalise went from 0.6 ms a step to 12 ms by step 3000, and the whole preset ran minutes
instead of half a minute. Flushing changes only numbers below 1.2e-38, which contribute
nothing a metric, spectrum or stage can show (the preset's outcomes and final accuracies are
bitwise the same either way).

The mode is a per-thread register (MXCSR), so it is set around the training generator's own
work and the caller's mode is put back before each event is handed out: a notebook's
arithmetic between two events runs as it did. torch's intra-op worker threads (its OpenMP
team, which torch.set_flush_denormal does not reach) are set once when a generator with more
than one torch thread starts, by running the setter on every thread of the team, and put
back when it ends. Threads created while the mode is on inherit it (the snapshot helper
thread, a team made inside the generator).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from functools import lru_cache, wraps
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_SUBNORMAL = np.float32(1e-39)
_ONE = np.float32(1.0)
_supported: bool | None = None  # learnt on first use: torch says whether it could set it


def flushing() -> bool:
    """Whether the calling thread flushes subnormals now (a subnormal operand reads as 0)."""
    return bool(_SUBNORMAL * _ONE == 0)


def _set(on: bool) -> bool:
    global _supported
    if _supported is False:
        return False
    done = torch.set_flush_denormal(on)
    if _supported is None:
        _supported = done
    return done


@lru_cache(maxsize=1)
def _team_call() -> Callable[[bool], None] | None:
    """A function that sets the mode on every thread of the calling thread's OpenMP team, or
    None where torch runs on no GNU OpenMP loaded in this process (then its workers keep
    theirs). The library is the instance torch loaded (found in the process's mappings), so
    the team is the one torch's parallel ops use."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return None
    if len(paths) != 1:
        return None
    try:
        gomp = ctypes.CDLL(paths.pop())
        parallel = gomp.GOMP_parallel
    except (OSError, AttributeError):
        return None
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    parallel.argtypes = [callback, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    setters = {on: callback(lambda _, on=on: torch.set_flush_denormal(on)) for on in (True, False)}

    def call(on: bool) -> None:
        # each thread of the team runs the setter (holding the GIL in turn; ctypes releases it
        # around the call)
        parallel(setters[on], None, torch.get_num_threads(), 0)

    return call


def _set_team(on: bool) -> bool:
    """The mode on torch's intra-op worker threads too; False where there are none to set."""
    if torch.get_num_threads() == 1 or _supported is False:
        return False
    call = _team_call()
    if call is None:
        return False
    call(on)
    return True


def flushed(events: Iterator[T]) -> Iterator[T]:
    """``events`` with subnormals flushed while it computes each next event; the caller's mode
    is restored before the event is yielded (and when the iterator ends or is closed). With
    more than one torch thread, the workers flush from the first event to the end."""
    team = False
    try:
        if not flushing() and _set_team(True):
            team = True
            _set(False)  # the team includes this thread: the caller's mode until next()
        while True:
            switch = not flushing() and _set(True)
            try:
                event = next(events)
            except StopIteration:
                return
            finally:
                if switch:
                    _set(False)
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
        if team:
            _set_team(False)


def flushes_denormals(fn: Callable[..., Iterator[T]]) -> Callable[..., Iterator[T]]:
    """Decorate a generator function so its work runs with subnormals flushed (``flushed``)."""

    @wraps(fn)
    def wrapper(*args, **kwargs) -> Iterator[T]:
        return flushed(fn(*args, **kwargs))

    return wrapper
