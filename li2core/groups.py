"""Finite groups as Cayley tables, named by compact URL-safe specs.

Spec grammar: factors joined by ``x``; a factor is ``Z<M>`` (cyclic, M >= 2), ``D<n>``
(dihedral of order 2n, n >= 3) or ``S<n>`` (symmetric, 2 <= n <= 5). Examples: ``Z71``,
``Z4xZ7``, ``Z2xZ2xZ9``, ``D5``, ``S4``. Element 0 is always the identity.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

MAX_ORDER = 256
MAX_SPEC_LENGTH = 64
_FACTOR = re.compile(r"([ZDS])(\d{1,6})$")


class GroupError(ValueError):
    """A group spec or Cayley table that does not define a valid group."""


@dataclass(frozen=True, eq=False)
class Group:
    """A finite group: ``table[a, b]`` is the index of the product a·b."""

    name: str
    table: np.ndarray
    kind: str  # cyclic | abelian | dihedral | symmetric | product | custom
    factors: tuple[int, ...] = field(default=())  # cyclic factor orders, when a product of Z's

    @property
    def order(self) -> int:
        return int(self.table.shape[0])

    @cached_property
    def identity(self) -> int:
        return _find_identity(self.table)

    @cached_property
    def inverse(self) -> np.ndarray:
        """inverse[a] = a⁻¹."""
        e = self.identity
        return np.argmax(self.table == e, axis=1).astype(np.int64)

    @cached_property
    def is_abelian(self) -> bool:
        return bool(np.array_equal(self.table, self.table.T))

    @cached_property
    def conjugacy_classes(self) -> list[list[int]]:
        """Classes {h g h⁻¹ : h ∈ H}, each sorted, ordered by smallest member."""
        t, inv = self.table, self.inverse
        seen = np.full(self.order, -1)
        classes: list[list[int]] = []
        for g in range(self.order):
            if seen[g] >= 0:
                continue
            members = sorted({int(x) for x in t[t[:, g], inv]})  # h·g·h⁻¹ for all h
            for m in members:
                seen[m] = len(classes)
            classes.append(members)
        return classes

    @property
    def is_cyclic_product(self) -> bool:
        """True for Z_M and direct products of cyclic groups (components labelled by frequency)."""
        return len(self.factors) > 0

    def describe(self) -> dict:
        return {
            "name": self.name,
            "order": self.order,
            "kind": self.kind,
            "abelian": self.is_abelian,
            "classes": len(self.conjugacy_classes),
        }


def _find_identity(table: np.ndarray) -> int:
    m = table.shape[0]
    ar = np.arange(m)
    for e in range(m):
        if np.array_equal(table[e], ar) and np.array_equal(table[:, e], ar):
            return e
    raise GroupError("identity law fails: no element e with e·a = a·e = a for every a")


def cyclic(m: int) -> Group:
    if m < 2:
        raise GroupError(f"Z{m}: a cyclic group Z<M> needs M >= 2")
    _check_order(m, f"Z{m}")
    a = np.arange(m)
    return Group(f"Z{m}", (a[:, None] + a[None, :]) % m, "cyclic", (m,))


def dihedral(n: int) -> Group:
    """D_n of order 2n; element r^k s^f has index k + n·f."""
    if n < 3:
        raise GroupError(f"D{n}: a dihedral group D<n> needs n >= 3 (order 2n)")
    _check_order(2 * n, f"D{n}")
    idx = np.arange(2 * n)
    k, f = idx % n, idx // n
    # (r^a s^f)(r^b s^g) = r^(a + (-1)^f b) s^(f+g)
    rot = (k[:, None] + np.where(f[:, None] == 0, 1, -1) * k[None, :]) % n
    flip = (f[:, None] + f[None, :]) % 2
    return Group(f"D{n}", rot + n * flip, "dihedral")


def symmetric(n: int) -> Group:
    """S_n with permutations in lexicographic order (identity first); (στ)(i) = σ(τ(i))."""
    if not 2 <= n <= 5:
        raise GroupError(f"S{n}: a symmetric group S<n> needs 2 <= n <= 5 (order <= 120)")
    perms = list(itertools.permutations(range(n)))
    index = {p: i for i, p in enumerate(perms)}
    table = np.array(
        [[index[tuple(s[t[i]] for i in range(n))] for t in perms] for s in perms], dtype=np.int64
    )
    return Group(f"S{n}", table, "symmetric")


def direct_product(groups: list[Group]) -> Group:
    """Product with mixed-radix indices (last factor fastest)."""
    table = groups[0].table
    for g in groups[1:]:
        m = g.order
        table = (table[:, None, :, None] * m + g.table[None, :, None, :]).reshape(
            table.shape[0] * m, table.shape[0] * m
        )
    name = "x".join(g.name for g in groups)
    _check_order(table.shape[0], name)
    all_cyclic = all(g.kind == "cyclic" for g in groups)
    factors = tuple(f for g in groups for f in g.factors) if all_cyclic else ()
    kind = "abelian" if all_cyclic else "product"
    return Group(name, table.astype(np.int64), kind, factors)


def _check_order(m: int, name: str) -> None:
    if m > MAX_ORDER:
        raise GroupError(f"{name}: order {m} exceeds the limit of {MAX_ORDER}")


def _factor_order(letter: str, n: int) -> int:
    """Order of one factor, checked without building it (S<n> is bounded before n!)."""
    if letter == "S":
        if not 2 <= n <= 5:
            raise GroupError(f"S{n}: a symmetric group S<n> needs 2 <= n <= 5 (order <= 120)")
        return math.factorial(n)
    return 2 * n if letter == "D" else n


def parse_group(spec: str) -> Group:
    """Build a group from a spec such as ``Z71``, ``Z4xZ7``, ``D5`` or ``S4``.

    The whole spec is read and its order bounded before any table is built, so a long
    product of small factors costs nothing."""
    if not isinstance(spec, str) or not spec.strip():
        raise GroupError("empty group spec; expected e.g. Z71, Z4xZ7, D5, S4")
    if len(spec) > MAX_SPEC_LENGTH:
        raise GroupError(f"group spec longer than {MAX_SPEC_LENGTH} characters")
    parts = spec.strip().split("x")
    parsed, order = [], 1
    for part in parts:
        m = _FACTOR.match(part)
        if not m:
            raise GroupError(
                f"{spec!r}: cannot read factor {part!r}; expected Z<M>, D<n> or S<n> joined by 'x'"
            )
        letter, n = m.group(1), int(m.group(2))
        order *= _factor_order(letter, n)
        parsed.append((letter, n))
    if len(parsed) > 1 and order > MAX_ORDER:
        _check_order(order, spec.strip())
    factors = [{"Z": cyclic, "D": dihedral, "S": symmetric}[letter](n) for letter, n in parsed]
    return factors[0] if len(factors) == 1 else direct_product(factors)


def group_from_table(table, name: str = "custom") -> Group:
    """Validate a user's Cayley table (closure, associativity, identity, inverses) and wrap it."""
    try:
        t = np.asarray(table, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise GroupError(f"Cayley table is not a square integer array: {exc}") from None
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        raise GroupError(f"Cayley table must be square and at least 2x2, got shape {t.shape}")
    m = t.shape[0]
    _check_order(m, name)
    if t.min() < 0 or t.max() >= m:
        raise GroupError(f"closure law fails: entries must lie in 0..{m - 1}")
    # (ab)c == a(bc) for all a, b, c
    left = t[t, :]  # left[a, b, c] = (ab)c
    right = t[:, t]  # right[a, b, c] = a(bc)
    bad = np.argwhere(left != right)
    if len(bad):
        a, b, c = (int(x) for x in bad[0])
        raise GroupError(f"associativity law fails: ({a}·{b})·{c} != {a}·({b}·{c})")
    e = _find_identity(t)
    for a in range(m):
        if not np.any((t[a] == e) & (t[:, a] == e)):
            raise GroupError(f"inverse law fails: element {a} has no inverse")
    is_ab = np.array_equal(t, t.T)
    return Group(name, t, "custom" if not is_ab else "abelian")
