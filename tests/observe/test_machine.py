"""The least-squares fit of T(h) = l + g*h behind `bsp bench`."""

import pytest

from bsp.machine import fit

SIZES = [0, 64, 512, 4 << 10, 32 << 10, 128 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20]


def line(l, g, noise=None):
    noise = noise or {}
    return [(h, (l + g * h) * noise.get(h, 1.0)) for h in SIZES]


def test_an_exact_line_gives_back_its_g_and_l():
    g, l = fit(line(30e-6, 0.1e-9))
    assert g == pytest.approx(0.1e-9, rel=1e-6)
    assert l == pytest.approx(30e-6, rel=1e-6)


def test_noise_at_large_h_does_not_swamp_l():
    # 20% noise on the largest h-relation is 90 us, three times l
    g, l = fit(line(30e-6, 0.1e-9, {4 << 20: 1.2, 2 << 20: 0.9}))
    assert l == pytest.approx(30e-6, rel=0.1)
    assert g == pytest.approx(0.1e-9, rel=0.25)


def test_l_is_the_fixed_cost_of_a_superstep_that_carries_data():
    # an empty sync costs 3 us, a superstep with any data 40 us more
    points = [(0, 3e-6)] + line(40e-6, 0.1e-9)[1:]
    g, l = fit(points)
    assert l == pytest.approx(40e-6, rel=1e-6)
    assert g == pytest.approx(0.1e-9, rel=1e-6)


def test_one_size_gives_l_only_and_nothing_is_negative():
    assert fit([(0, 5e-6), (0, 7e-6)]) == (0.0, pytest.approx(6e-6))
    assert fit([(0, 10e-6), (1 << 20, 5e-6)]) == (0.0, pytest.approx(10e-6))
