"""`bsp bench`: r, g and l measured, printed and saved as JSON, on the
backend in use (in this process), and under --mpi through mpiexec."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bsp import cli
from bsp.launch.bsp_run import choose_backend
from bsp.machine import DEFAULT_SIZES, MachineParameters, fit
from bsp.testing import require_nprocs

BIN = Path(sys.executable).parent


def check_saved(path: Path, nprocs: int, backend: str) -> MachineParameters:
    saved = MachineParameters.load(str(path))
    assert (saved.nprocs, saved.backend) == (nprocs, backend)
    assert saved.r > 0 and (saved.g, saved.l) == fit(saved.points)     # g and l are the fit of the points saved
    assert [h for h, _ in saved.points] == [size // max(1, nprocs - 1) * max(1, nprocs - 1) for size in DEFAULT_SIZES]
    assert all(seconds > 0 for _, seconds in saved.points)
    return saved


def test_bench_measures_prints_and_saves(tmp_path, capsys):
    require_nprocs(2)
    path = tmp_path / "machine.json"
    assert cli.main(["bench", "-n", "2", "--out", str(path)]) == 0
    backend = choose_backend(None)
    saved = check_saved(path, 2, backend)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == saved.describe() and f"{backend} backend, nprocs = 2" in out[0]
    assert out[1].startswith(f"fit of T(h) = l + g*h over {len(DEFAULT_SIZES)} sizes")
    assert len(out) == 2 + len(DEFAULT_SIZES) + 1 and out[-1] == f"wrote {path}"


def test_bench_refuses_an_output_in_a_missing_directory(capsys):
    assert cli.main(["bench", "-n", "2", "--out", "/no/such/dir/m.json"]) == 2
    assert "bsp bench: --out: the directory '/no/such/dir' of '/no/such/dir/m.json' does not exist" \
        in capsys.readouterr().err


@pytest.mark.mpi_skip
def test_bench_under_mpi(tmp_path):
    if not (BIN / "mpiexec").exists():
        pytest.skip("no mpiexec beside this Python")
    path = tmp_path / "machine.json"
    done = subprocess.run([str(BIN / "bsp"), "bench", "--mpi", "-n", "2", "--out", str(path)],
                          capture_output=True, text=True, timeout=300,
                          env={key: value for key, value in os.environ.items() if not key.startswith("BSP_")})
    assert done.returncode == 0, done.stderr
    saved = check_saved(path, 2, "mpi")
    assert done.stdout.splitlines()[0] == saved.describe()
    assert done.stdout.count("wrote") == 1           # printed once, by rank 0
