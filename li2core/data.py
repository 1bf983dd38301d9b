"""The full multiplication table of a group and its deterministic train/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .groups import Group


@dataclass
class GroupDataset:
    """All M² rows (a, b) → a·b; ``train_idx``/``test_idx`` index into them."""

    group: Group
    a: torch.Tensor  # (M²,) int64, first operand
    b: torch.Tensor  # (M²,) int64, second operand
    label: torch.Tensor  # (M²,) int64, a·b
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    train_fraction: float

    @property
    def order(self) -> int:
        return self.group.order

    @property
    def n_train(self) -> int:
        return int(self.train_idx.numel())

    @property
    def n_test(self) -> int:
        return int(self.test_idx.numel())

    @property
    def p_crit(self) -> float:
        from .theory import p_crit

        return p_crit(self.group)

    def to(self, device) -> GroupDataset:
        mv = {k: getattr(self, k).to(device) for k in ("a", "b", "label", "train_idx", "test_idx")}
        return GroupDataset(self.group, train_fraction=self.train_fraction, **mv)


def make_dataset(group: Group, train_fraction: float, seed: int) -> GroupDataset:
    """Split the table with a generator seeded only by ``seed``, so the split is reproducible
    and independent of the weight initialisation's random stream."""
    m = group.order
    idx = np.arange(m * m)
    a, b = idx // m, idx % m
    label = group.table[a, b]
    n_train = round(train_fraction * m * m)
    perm = np.random.default_rng(seed).permutation(m * m)
    train_idx, test_idx = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    t = torch.from_numpy
    return GroupDataset(group, t(a), t(b), t(np.asarray(label, dtype=np.int64)), t(train_idx),
                        t(test_idx), train_fraction)
