"""Where the user's code called into pybsp, for error messages and profiles."""

from __future__ import annotations

import os
import sys
from types import CodeType, FrameType

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep      # the bsp package
_inside_bsp: dict[str, bool] = {}       # co_filename -> whether it is a module of the bsp package


def user_frame(depth: int = 1) -> FrameType:
    """The innermost frame outside the bsp package (where the user called
    into it), starting from the frame `depth` calls up; found with one
    dictionary lookup per frame rather than a path normalization, as the
    profile asks at every sync."""
    frame = sys._getframe(depth)
    while frame.f_back is not None:
        filename = frame.f_code.co_filename
        inside = _inside_bsp.get(filename)
        if inside is None:
            inside = _inside_bsp[filename] = os.path.abspath(filename).startswith(PACKAGE_DIR)
        if not inside:
            break
        frame = frame.f_back
    return frame


def user_call_site() -> str:
    """'file:line in function' of the innermost frame outside the bsp package."""
    return frame_site(user_frame(2))


def frame_site(frame: FrameType) -> str:
    """'file:line in function' of where `frame` is now."""
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def definition_site(code: CodeType) -> str:
    """'file:line in function' of where a function is defined."""
    return f"{code.co_filename}:{code.co_firstlineno} in {code.co_name}"
