"""The checkpoints a World saves and restores: files in the run's checkpoint
directory (`bsp.checkpoint.save` writes them, `bsp.checkpoint.restore` reads them back).
The rank runner gives every World this, so that `bsp.world`, which the
checkpoint modules build on, imports none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bsp.checkpoint.save import save
from bsp.checkpoint.restore import restore

if TYPE_CHECKING:
    from bsp.world import World


class FileCheckpointing:
    """World.save and World.restore (see there) on the checkpoint files."""

    def save(self, world: World, state: dict[str, Any]) -> None:
        save(world, state)

    def restore(self, world: World, distribution: Any, grid: Any) -> dict[str, Any] | None:
        return restore(world, distribution, grid)


CHECKPOINTING = FileCheckpointing()
