"""Isotypic components of the regular representation of a finite group."""

from __future__ import annotations

import numpy as np

from .groups import Group


def max_irrep_dim(group: Group) -> int:
    """Largest irrep dimension: from the class algebra's eigen-decomposition."""
    raise NotImplementedError
