"""Power couples: in each row of a table of positive integers, the adjacent
pair (a, b) with the largest a**b.

Such powers overflow every type but Python's integers, so the pairs are
compared by b*log(a), which orders them the same way.  Rank 0 holds the
table (as if it had read it from a file) and scatters its rows in blocks
(DistArray.from_root); each rank scores its rows with numpy; an allreduce
finds the most powerful couple of the whole table, and the couples of every
row are gathered back to rank 0.  Checked against the same scoring of the
whole table in one process.

BSP cost: 3 supersteps: the scatter (h = 8 rows cols bytes at rank 0), the
allreduce (h = 32(p-1)), the gather (h = 16 rows at rank 0);
w = O(rows cols / p).

    python examples/power_couples.py [rows] [columns]    (defaults: 500000 x 12)
"""

import math
import sys

import numpy as np

import bsp
from bsp import DistArray


def random_table(rows: int, columns: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 100, (rows, columns))


def best_couples(table: np.ndarray) -> np.ndarray:
    """For each row, the position of the first a of its most powerful
    adjacent pair (a, b), the first one if several tie."""
    return np.argmax(table[:, 1:] * np.log(table[:, :-1]), axis=1)


def couples_of(table: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The pairs (a, b) at positions `at`, one row each."""
    return np.take_along_axis(table, np.stack([at, at + 1], axis=1), axis=1)


def power_couples(world: bsp.World, rows: int, columns: int) -> tuple[np.ndarray | None, tuple]:
    table = DistArray.from_root(world, random_table(rows, columns) if world.pid == 0 else None)
    couples = couples_of(table.local, best_couples(table.local))
    a, b = couples.T
    scores = b * np.log(a)
    # The champion: the highest score, the first row among equals (hence -row).
    mine = (-math.inf, 0, 0, 0)
    if len(scores):
        i = int(np.argmax(scores))
        mine = (float(scores[i]), -table.rows[i], int(a[i]), int(b[i]))
    champion = world.allreduce(mine, op=max)
    return DistArray(world, (rows, 2), couples).gather(root=0), champion


if __name__ == "__main__":
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    columns = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    if rows < 1 or columns < 2:
        raise SystemExit("a table of power couples has at least 1 row and 2 columns")
    results = bsp.run(power_couples, rows, columns)
    couples, (_, row, a, b) = results[0]
    table = random_table(rows, columns)
    expected = couples_of(table, best_couples(table))
    print(f"power couples of a {rows} x {columns} table on {len(results)} ranks; first rows: "
          + ", ".join(f"{tuple(pair)}" for pair in couples[:4].tolist()))
    print(f"the most powerful: {a}**{b}, a number of {len(str(a ** b))} digits, in row {-row}")
    strongest = int(np.argmax(expected[:, 1] * np.log(expected[:, 0])))
    ok = (np.array_equal(couples, expected) and [-row, a, b] == [strongest, *expected[strongest].tolist()]
          and all(result[1] == results[0][1] for result in results))
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
