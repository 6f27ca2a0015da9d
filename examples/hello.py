"""Every rank greets every other rank in one superstep.

    python examples/hello.py              # fork backend, one rank per core
    bsp run -n 4 examples/hello.py        # four ranks
"""

import bsp


def hello(world: bsp.World) -> list[str]:
    for dest in range(world.nprocs):
        if dest != world.pid:
            world.send(f"hello from {world.pid}", dest)
    world.sync()
    return [greeting for _, greeting in world.messages()]


def expected(pid: int, nprocs: int) -> list[str]:
    """What rank `pid` should hear, worked out serially."""
    return [f"hello from {source}" for source in range(nprocs) if source != pid]


if __name__ == "__main__":
    heard = bsp.run(hello)
    for pid, greetings in enumerate(heard):
        print(f"rank {pid} heard: {', '.join(greetings) or 'nobody'}")
    ok = all(greetings == expected(pid, len(heard)) for pid, greetings in enumerate(heard))
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
