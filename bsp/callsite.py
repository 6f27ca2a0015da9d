"""Where the user's code called into pybsp, for error messages."""

from __future__ import annotations

import os
import sys
from types import CodeType

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_call_site() -> str:
    """'file:line in function' of the innermost frame outside the bsp package."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def definition_site(code: CodeType) -> str:
    """'file:line in function' of where a function is defined."""
    return f"{code.co_filename}:{code.co_firstlineno} in {code.co_name}"
