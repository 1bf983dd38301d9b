"""Element names follow the group law: composing the named elements by hand gives the name of
the table's product."""

from __future__ import annotations

import itertools

import pytest

from li2core.element_names import cycle_notation, element_names
from li2core.groups import group_from_table, parse_group


def permutation_of(name: str, n: int) -> tuple[int, ...]:
    """Cycle notation on 1..n → 0-based image tuple (an independent parser)."""
    image = list(range(n))
    if name == "e":
        return tuple(image)
    for cycle in name[1:-1].split(")("):
        pts = [int(x) - 1 for x in cycle.split()]
        for i, p in enumerate(pts):
            image[p] = pts[(i + 1) % len(pts)]
    return tuple(image)


@pytest.mark.parametrize("spec", ["Z7", "Z4xZ7", "D5", "S3", "S4", "Z2xS3", "D3xZ2"])
def test_names_are_distinct_one_per_element(spec):
    group = parse_group(spec)
    names = element_names(group)
    assert len(names) == group.order == len(set(names))


def test_cyclic_names_are_the_residues():
    assert element_names(parse_group("Z5")) == ["0", "1", "2", "3", "4"]


def test_product_names_are_tuples_that_add_componentwise():
    group = parse_group("Z4xZ7")
    names = element_names(group)
    index = {name: i for i, name in enumerate(names)}
    for x, y in itertools.product(range(4), range(7)):
        for u, v in [(1, 3), (3, 6), (2, 0)]:
            prod = group.table[index[f"({x},{y})"], index[f"({u},{v})"]]
            assert names[prod] == f"({(x + u) % 4},{(y + v) % 7})"


@pytest.mark.parametrize("n", [3, 5, 8])
def test_dihedral_names_obey_the_relations(n):
    group = parse_group(f"D{n}")
    names = element_names(group)
    idx = {name: i for i, name in enumerate(names)}
    assert names[0] == "e" and names[1] == "r" and names[n] == "s"

    def mul(x, y):
        return names[group.table[idx[x], idx[y]]]

    for k in range(1, n):
        rk = "r" if k == 1 else f"r^{k}"
        assert mul("s", rk) == f"s {rk}"  # s·r^k is written s r^k
        assert mul(rk, "s") == ("s r" if n - k == 1 else f"s r^{n - k}")  # r^k s = s r^-k
    assert mul("s", "s") == "e"


@pytest.mark.parametrize("n", [3, 4, 5])
def test_symmetric_names_compose_right_to_left(n):
    group = parse_group(f"S{n}")
    names = element_names(group)
    perms = [permutation_of(name, n) for name in names]
    assert len(set(perms)) == group.order
    for a in range(group.order):
        for b in range(0, group.order, 7):
            composed = tuple(perms[a][perms[b][i]] for i in range(n))  # (στ)(i) = σ(τ(i))
            assert perms[group.table[a, b]] == composed


def test_cycle_notation_skips_fixed_points():
    assert cycle_notation((0, 1, 2, 3)) == "e"
    assert cycle_notation((1, 0, 3, 2)) == "(1 2)(3 4)"
    assert cycle_notation((1, 2, 0, 3)) == "(1 2 3)"


def test_custom_tables_are_named_by_index():
    table = parse_group("Z3").table.tolist()
    assert element_names(group_from_table(table)) == ["0", "1", "2"]
