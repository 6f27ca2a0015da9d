"""Checkpoint and restart at superstep boundaries (`bsp.run(...,
checkpoint=DIR)`, `world.save(**state)`, `world.restore()`).

- `save`: the directory, its lock, and a save (collective, atomic);
- `restore`: the last complete checkpoint, read back on any nprocs;
- `files`: the checkpoint's files (private, written once, checked on read);
- `arrays`: DistArrays in a checkpoint, redistributed on restore;
- `world_checkpoints`: what the rank runner gives every World.

May import: bsp.arrays, bsp.objects, bsp.core, bsp.base, bsp.world.  Data
leaves as files in the checkpoint directory and enters from them."""
