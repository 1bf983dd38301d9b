import itertools

import numpy as np
import pytest

from li2core.groups import GroupError, group_from_table, parse_group


def assert_group_laws(g):
    t = g.table
    m = g.order
    e = g.identity
    assert e == 0
    for a, b, c in itertools.product(range(m), repeat=3) if m <= 12 else []:
        assert t[t[a, b], c] == t[a, t[b, c]]
    assert np.all(t[np.arange(m), g.inverse] == e)
    # every row and column of a Cayley table is a permutation
    assert all(len(set(row)) == m for row in t)
    assert all(len(set(col)) == m for col in t.T)


@pytest.mark.parametrize("spec,order,abelian,n_classes", [
    ("Z2", 2, True, 2), ("Z7", 7, True, 7), ("Z4xZ7", 28, True, 28),
    ("Z2xZ2xZ9", 36, True, 36), ("D3", 6, False, 3), ("D4", 8, False, 5), ("D5", 10, False, 4),
    ("S3", 6, False, 3), ("S4", 24, False, 5), ("S5", 120, False, 7),
])
def test_specs_build_valid_groups(spec, order, abelian, n_classes):
    g = parse_group(spec)
    assert g.order == order
    assert g.is_abelian == abelian
    assert len(g.conjugacy_classes) == n_classes
    assert sorted(x for c in g.conjugacy_classes for x in c) == list(range(order))
    assert_group_laws(g)


def test_cyclic_table_is_modular_addition():
    g = parse_group("Z11")
    assert g.table[7, 9] == (7 + 9) % 11
    assert g.factors == (11,)


def test_product_keeps_cyclic_factors():
    g = parse_group("Z4xZ7")
    assert g.factors == (4, 7)
    # mixed radix, last factor fastest: (a1, a2) -> a1*7 + a2
    a, b = 1 * 7 + 5, 3 * 7 + 4
    assert g.table[a, b] == ((1 + 3) % 4) * 7 + (5 + 4) % 7


def test_dihedral_is_non_abelian_with_rotation_subgroup():
    g = parse_group("D5")
    rotations = list(range(5))
    assert all(g.table[a, b] in rotations for a in rotations for b in rotations)
    s = 5  # a reflection
    assert g.table[s, s] == 0


@pytest.mark.parametrize("spec,needle", [
    ("Z1", "M >= 2"), ("Q8x", "cannot read factor"), ("S9", "2 <= n <= 5"), ("", "empty"),
    ("D2", "n >= 3"), ("Z300", "exceeds"), ("Z16xZ17", "exceeds"),
])
def test_bad_specs_get_clear_errors(spec, needle):
    with pytest.raises(GroupError, match=needle):
        parse_group(spec)


def test_custom_table_roundtrip():
    g = group_from_table(parse_group("S3").table.tolist())
    assert g.order == 6 and not g.is_abelian


@pytest.mark.parametrize("table,law", [
    ([[0, 1], [1, 2]], "closure"),
    ([[0, 1, 2], [1, 0, 0], [2, 0, 0]], "associativity|inverse"),
    ([[0, 0], [0, 0]], "identity"),
    ([[0, 1, 2], [1, 1, 1], [2, 1, 0]], "associativity|inverse"),
    ([[0, 1], [1]], "square"),
])
def test_custom_table_names_the_failing_law(table, law):
    with pytest.raises(GroupError, match=law):
        group_from_table(table)


def test_custom_table_without_inverse():
    # a monoid that is associative with identity but where 1 has no inverse: {0: e, 1: z}, z·z=z
    with pytest.raises(GroupError, match="inverse"):
        group_from_table([[0, 1], [1, 1]])
