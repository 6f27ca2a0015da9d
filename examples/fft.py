"""A radix-2 fast Fourier transform of a distributed vector of n = n1 n2
complex numbers (n a power of two), by the four-step (transpose) method.

The vector x is held as the n1 x n2 matrix X[j1, j2] = x[j1 + n1 j2]
(x.reshape(n2, n1).T), its rows split over the ranks in blocks.  With
w_m = exp(-2 pi i / m),

    y[k2 + n2 k1] = sum_j1 w_n1^(j1 k1) w_n^(j1 k2) sum_j2 X[j1, j2] w_n2^(j2 k2)

so the transform is: an FFT of length n2 of every row (local), a product
with the twiddle factors w_n^(j1 k2) (local), a transposition (the one
superstep), and an FFT of length n1 of every row of the transpose (local).
The result Y[k2, k1] = y[k2 + n2 k1] holds y the way X held x, with n1 and
n2 swapped.  The local FFTs are radix-2, written out below: a bit-reversal
permutation, then log2 of the length butterfly stages, each over all the
rows at once.  Checked against numpy.fft.fft of the whole vector.

BSP cost: 1 superstep, h = 16n/p bytes; w = 5 n log2(n) / p flops.

    python examples/fft.py [log2 n]        (default: n = 2**20)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray

TONE = 1000


def signal(j: np.ndarray, n: int) -> np.ndarray:
    """A pure tone at frequency TONE (mod n) on top of a chirp."""
    return np.exp(2j * np.pi * (TONE * j % n) / n) + 0.5 * np.exp(1j * np.pi * (j * j % (2 * n)) / n)


def bit_reversal(m: int) -> np.ndarray:
    """The permutation that reverses the log2(m) bits of 0..m-1."""
    bits, index = m.bit_length() - 1, np.arange(m)
    reversed_index = np.zeros(m, np.int64)
    for bit in range(bits):
        reversed_index |= ((index >> bit) & 1) << (bits - 1 - bit)
    return reversed_index


def fft_rows(a: np.ndarray) -> np.ndarray:
    """The DFT of every row of `a`, whose length m is a power of two."""
    rows, m = a.shape
    a = a[:, bit_reversal(m)]
    half = 1
    while half < m:
        # Each group of 2*half holds the transforms of its two halves; a
        # butterfly combines them into the transform of the group.
        groups = a.reshape(rows, m // (2 * half), 2, half)
        even, odd = groups[:, :, 0], groups[:, :, 1] * np.exp(-1j * np.pi * np.arange(half) / half)
        a = np.concatenate([even + odd, even - odd], axis=2).reshape(rows, m)
        half *= 2
    return a


def fft(world: bsp.World, n1: int, n2: int) -> np.ndarray | None:
    n = n1 * n2
    x = DistArray.from_function(world, (n1, n2), lambda j1: signal(j1[:, None] + n1 * np.arange(n2), n),
                                dtype=complex)
    j1, k2 = x.rows[:, None], np.arange(n2)
    z = DistArray(world, x.shape, fft_rows(x.local) * np.exp(-2j * np.pi * (j1 * k2 % n) / n))
    y = z.transpose()
    y.local = fft_rows(y.local)
    return y.gather(root=0)


if __name__ == "__main__":
    bits = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    n1, n2 = 2 ** ((bits + 1) // 2), 2 ** (bits // 2)
    results = bsp.run(fft, n1, n2)
    y = results[0].T.ravel()                  # Y[k2, k1] = y[k2 + n2 k1]
    expected = np.fft.fft(signal(np.arange(n1 * n2), n1 * n2))
    error = np.abs(y - expected).max() / np.abs(expected).max()
    print(f"FFT of {n1 * n2} = {n1} x {n2} complex numbers on {len(results)} ranks: "
          f"the strongest frequency is {np.abs(y).argmax()}")
    print(f"largest difference from numpy.fft.fft, relative to the largest |y[k]|: {error:.1e}")
    ok = error < 1e-12
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
