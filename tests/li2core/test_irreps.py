"""Isotypic components: exact DFT agreement, projector algebra, known irrep sizes."""

import cmath
import math

import numpy as np
import pytest
import torch

from li2core.groups import dihedral, group_from_table, parse_group
from li2core.irreps import (
    component_power,
    concentration,
    isotypic_components,
    max_irrep_dim,
    projectors,
)

torch.set_num_threads(1)


def slow_dft_power(x, m):
    """|x̂[k]|² + |x̂[M−k]|² with the unitary DFT, by explicit loops over m."""
    out = []
    for k in range(1, (m - 1) // 2 + 1 + (1 if m % 2 == 0 else 0)):
        def coef(q):
            return sum(x[t] * cmath.exp(-2j * math.pi * q * t / m) for t in range(m)) / math.sqrt(m)
        if 2 * k == m:
            out.append(abs(coef(k)) ** 2)
        else:
            out.append(abs(coef(k)) ** 2 + abs(coef(m - k)) ** 2)
    return np.array(out)


@pytest.mark.parametrize("m", [7, 12, 23])
def test_cyclic_power_equals_explicit_dft(m):
    comps = isotypic_components(parse_group(f"Z{m}"))
    x = np.random.default_rng(m).standard_normal((m, 3))
    power = component_power(comps, x)
    assert power.shape == (3, comps.count)
    for j in range(3):
        np.testing.assert_allclose(power[j], slow_dft_power(x[:, j], m), rtol=1e-10, atol=1e-12)
    expected = [f"k={k}" for k in range(1, m // 2 + 1)]
    assert comps.labels == expected


def test_torch_input_gives_torch_output_matching_numpy():
    comps = isotypic_components(parse_group("D5"))
    x = np.random.default_rng(0).standard_normal((10, 4))
    pt = component_power(comps, torch.tensor(x, dtype=torch.float32))
    assert isinstance(pt, torch.Tensor) and pt.dtype == torch.float32 and pt.shape == (4, 3)
    np.testing.assert_allclose(pt.numpy(), component_power(comps, x), rtol=1e-5)
    # a 1-D vector gives (C,); total power + trivial part = ‖x‖²
    v = x[:, 0]
    triv = v.mean() ** 2 * 10
    assert component_power(comps, v).sum() + triv == pytest.approx(v @ v)


def quaternion_table():
    """Q8 from its 2×2 complex matrices (a group with a quaternionic-type 2-dim irrep)."""
    one, i = np.eye(2, dtype=complex), np.array([[1j, 0], [0, -1j]])
    j, k = np.array([[0, 1], [-1, 0]], dtype=complex), np.array([[0, 1j], [1j, 0]])
    els = [s * g for g in (one, i, j, k) for s in (1, -1)]
    def find(mat):
        return next(n for n, e in enumerate(els) if np.allclose(e, mat))
    return [[find(a @ b) for b in els] for a in els]


def z7_semidirect_z3_table():
    """The Frobenius group Z7⋊Z3 (order 21): two complex-conjugate 3-dim irreps."""
    els = [(a, b) for b in range(3) for a in range(7)]
    def mul(x, y):  # (a, b)(c, d) = (a + 2^b c, b + d)
        return ((x[0] + pow(2, x[1], 7) * y[0]) % 7, (x[1] + y[1]) % 3)
    return [[els.index(mul(x, y)) for y in els] for x in els]


@pytest.mark.parametrize("group", [
    parse_group("Z12"), parse_group("Z4xZ7"), parse_group("S3"), dihedral(4), parse_group("S4"),
    parse_group("D5xZ3"), group_from_table(quaternion_table(), "Q8"),
    group_from_table(z7_semidirect_z3_table(), "F21"),
], ids=lambda g: g.name)
def test_projectors_are_a_resolution_of_identity(group):
    comps = isotypic_components(group)
    m = group.order
    pis = projectors(comps)
    assert pis.shape == (comps.count + 1, m, m)
    np.testing.assert_allclose(pis.sum(axis=0), np.eye(m), atol=1e-10)
    for a in range(len(pis)):
        np.testing.assert_allclose(pis[a] @ pis[a], pis[a], atol=1e-10)
        for b in range(a + 1, len(pis)):
            assert np.abs(pis[a] @ pis[b]).max() < 1e-10
    np.testing.assert_allclose(comps.basis.T @ comps.basis, np.eye(m), atol=1e-10)
    # each projector commutes with every left and right translation (it is isotypic)
    for g in range(m):
        left = np.eye(m)[group.table[g]].T  # (L_g)[g·h, h] = 1
        right = np.eye(m)[group.table[:, g]].T
        for p in pis:
            assert np.abs(left @ p - p @ left).max() < 1e-9
            assert np.abs(right @ p - p @ right).max() < 1e-9
    assert [int(np.rint(np.trace(p))) for p in pis[:-1]] == comps.sizes


@pytest.mark.parametrize("spec,sizes,dims", [
    ("S3", [1, 4], [1, 2]),
    ("D4", [1, 1, 1, 4], [1, 1, 1, 2]),
    ("S4", [1, 4, 9, 9], [1, 2, 3, 3]),
    ("D5", [1, 4, 4], [1, 2, 2]),
])
def test_known_nonabelian_sizes(spec, sizes, dims):
    comps = isotypic_components(parse_group(spec))
    assert [1, *comps.sizes] == [1, *sizes]  # the trivial component (size 1) is not listed
    assert comps.dims == dims
    assert comps.labels[0] == "d=1 #1"


def test_conjugate_pairs_are_merged():
    z4z7 = isotypic_components(parse_group("Z4xZ7"))
    # 28 characters: trivial, 3 self-conjugate ((0,0) excluded; (2,0) only), the rest in pairs
    assert z4z7.count == 1 + (28 - 2) // 2 and z4z7.sizes.count(1) == 1
    assert "(2,0)" in z4z7.labels and "(1,3)" in z4z7.labels and "(3,4)" not in z4z7.labels
    f21 = isotypic_components(group_from_table(z7_semidirect_z3_table(), "F21"))
    # Z7⋊Z3: irreps 1, 1, 1̄ (pair → size 2), 3, 3̄ (pair → size 18)
    assert sorted(zip(f21.dims, f21.sizes, strict=True)) == [(1, 2), (3, 18)]
    q8 = isotypic_components(group_from_table(quaternion_table(), "Q8"))
    assert sorted(zip(q8.dims, q8.sizes, strict=True)) == [(1, 1), (1, 1), (1, 1), (2, 4)]


def test_max_irrep_dim():
    assert max_irrep_dim(parse_group("D5")) == 2
    assert max_irrep_dim(parse_group("S4")) == 3
    assert max_irrep_dim(parse_group("S5")) == 6
    assert max_irrep_dim(parse_group("Z4xZ7")) == 1


def test_single_component_vector_is_fully_concentrated():
    comps = isotypic_components(parse_group("S4"))
    b = comps.basis[:, comps.column_component == 2]
    x = b @ np.random.default_rng(1).standard_normal(b.shape[1])
    p = component_power(comps, x[:, None])
    assert concentration(p)[0] == pytest.approx(1.0) and int(p.argmax()) == 2
    assert concentration(np.ones((1, 4)))[0] == pytest.approx(0.25)
