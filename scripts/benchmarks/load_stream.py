"""What one unpickler per message costs: `wire.load_stream` of N small
messages (each pickled on its own, one after the other in one stream, as a
rank receives them from one source in one superstep), against the shared
unpickler it used before issue 11 (reconstructed here: it decoded wrongly
whenever a later message repeated an object inside it, so it is timed, not
used), and against a correct alternative that is not adopted: each message
preceded by its length, and decoded with `pickle.loads` of its own bytes.
Prints a markdown table of medians.

    .venv/bin/python scripts/benchmarks/load_stream.py [--repeats 31]
"""

from __future__ import annotations

import argparse
import io
import pickle
import platform
import statistics
import struct
import time

from bsp.core import wire

COUNTS = (1, 10, 100, 10_000)
MESSAGES = {
    "small dict": lambda i: {"key": i, "name": f"item {i}", "value": i / 3},
    "tuple (int, float, str)": lambda i: (i, i / 3, "abc"),
}


def shared_unpickler(stream, count, buffers=()):
    """load_stream as it was: one unpickler for the whole stream."""
    unpickler = pickle.Unpickler(io.BytesIO(stream), buffers=iter(buffers))
    return [unpickler.load() for _ in range(count)]


def fresh_unpicklers(stream, count, buffers=()):
    return list(wire.load_stream(stream, count, buffers))


_LENGTH = struct.Struct("<q")


def length_prefixed(stream, count, buffers=()):
    """The alternative: [length, pickle] per message, each decoded alone."""
    view, position, pending, objects = memoryview(stream), 0, iter(buffers), []
    for _ in range(count):
        (length,) = _LENGTH.unpack_from(view, position)
        position += _LENGTH.size
        objects.append(pickle.loads(view[position:position + length], buffers=pending))
        position += length
    return objects


def stream_of(make, count, prefixed=False):
    pickles = [wire.dumps(make(i))[0] for i in range(count)]
    return b"".join((_LENGTH.pack(len(data)) if prefixed else b"") + data for data in pickles)


def median_seconds(decode, stream, count, repeats):
    loops = max(1, 20_000 // count)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            decode(stream, count)
        times.append((time.perf_counter() - start) / loops)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=31)
    repeats = parser.parse_args().repeats
    print(f"Python {platform.python_version()}, {platform.machine()}; medians of {repeats} repeats\n")
    print("| messages | N | shared unpickler (us) | one unpickler per message (us) | extra per message (us) "
          "| length-prefixed `loads` (us) | its extra per message (us) |")
    print("|---|---|---|---|---|---|---|")
    for name, make in MESSAGES.items():
        for count in COUNTS:
            stream = stream_of(make, count)
            before = median_seconds(shared_unpickler, stream, count, repeats)
            after = median_seconds(fresh_unpicklers, stream, count, repeats)
            alternative = median_seconds(length_prefixed, stream_of(make, count, True), count, repeats)
            print(f"| {name} | {count} | {before * 1e6:.1f} | {after * 1e6:.1f} | "
                  f"{(after - before) / count * 1e6:.2f} | {alternative * 1e6:.1f} | "
                  f"{(alternative - before) / count * 1e6:.2f} |")


if __name__ == "__main__":
    main()
