"""pybsp states the platforms it runs on and refuses the others at import,
with a message that says what to do."""

import subprocess
import sys

import pytest

from bsp.platforms import check_platform

pytestmark = pytest.mark.mpi_skip       # nothing here runs ranks


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_linux_and_macos_are_supported(platform):
    check_platform(platform)


@pytest.mark.parametrize("platform", ["win32", "cygwin", "emscripten"])
def test_other_platforms_are_refused_with_what_to_do(platform):
    with pytest.raises(ImportError, match=f"pybsp runs on Linux and macOS, not on '{platform}'.*On Windows, use WSL"):
        check_platform(platform)


def test_importing_bsp_on_windows_is_that_error():
    done = subprocess.run([sys.executable, "-c", "import sys; sys.platform = 'win32'; import bsp"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ImportError: pybsp runs on Linux and macOS, not on 'win32'" in done.stderr
