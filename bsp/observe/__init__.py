"""Watching a run: what each superstep cost, against the BSP cost model.

- `profile`: the superstep profile and the model's prediction beside it;
  `profile_observer`: the per-rank observer that fills it;
- `trace` (Chrome trace JSON) and `timeline` (a PNG picture) of a profile;
- `bspbench`: the machine parameters r, g, l as Bisseling's bspbench measures them;
- `logs`: rank-aware logging and rank 0's progress line;
- `units`, `output_paths`: durations and sizes for people, paths for files.

May import: bsp.core, bsp.base, bsp.world, and bsp.run's rank runner (logs).
Data enters from the observed engine, per superstep; leaves as tables,
files and pictures in the launching process."""
