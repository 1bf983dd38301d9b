"""Names a student reads for the elements of a group, in index order (li2core.groups).

Z_M: 0..M−1. D_n: e, r, r^2, …, s, s r, … (index k + n·f is r^k s^f = s r^(−k)). S_n:
permutations of 1..n in cycle notation, e for the identity. Products: tuples of the factors'
names, e.g. (1,3) in Z4×Z7 or (r^2,(1 2)) in D3×S3. Custom tables: 0..M−1.
"""

from __future__ import annotations

import itertools
import re

from .groups import Group, GroupError, parse_group

_FACTOR = re.compile(r"([ZDS])(\d+)$")


def cyclic_names(m: int) -> list[str]:
    return [str(i) for i in range(m)]


def _power(letter: str, k: int) -> str:
    return letter if k == 1 else f"{letter}^{k}"


def dihedral_names(n: int) -> list[str]:
    """Rotations r^k first, then reflections r^k s written as s r^(−k mod n)."""
    rotations = ["e"] + [_power("r", k) for k in range(1, n)]
    reflections = ["s"] + [f"s {_power('r', (-k) % n)}" for k in range(1, n)]
    return rotations + reflections


def cycle_notation(perm: tuple[int, ...]) -> str:
    """(0-based image tuple) → cycles on 1..n, fixed points left out, e for the identity."""
    seen, cycles = set(), []
    for start in range(len(perm)):
        if start in seen or perm[start] == start:
            continue
        cycle, i = [], start
        while i not in seen:
            seen.add(i)
            cycle.append(i + 1)
            i = perm[i]
        cycles.append("(" + " ".join(map(str, cycle)) + ")")
    return "".join(cycles) or "e"


def symmetric_names(n: int) -> list[str]:
    """In groups.symmetric's order: permutations of range(n) in lexicographic order."""
    return [cycle_notation(p) for p in itertools.permutations(range(n))]


def _factor_names(part: str) -> list[str]:
    letter, n = _FACTOR.match(part).groups()
    return {"Z": cyclic_names, "D": dihedral_names, "S": symmetric_names}[letter](int(n))


def element_names(group: Group) -> list[str]:
    """One name per element index; a group not built from a spec is named by its indices."""
    try:
        if parse_group(group.name).order != group.order:
            raise GroupError(group.name)
    except GroupError:
        return cyclic_names(group.order)
    parts = group.name.split("x")
    if len(parts) == 1:
        return _factor_names(parts[0])
    # direct_product's mixed-radix order (last factor fastest) is itertools.product's order
    return ["(" + ",".join(t) + ")" for t in itertools.product(*map(_factor_names, parts))]
