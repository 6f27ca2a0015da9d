"""Recording a run and replaying one rank of it.

- `recording`: each rank records at the transport what arrived at every
  exchange (`bsp.run(..., record=path)`);
- `record_file`: the file of a recorded run, its parts and index;
- `replay`: `bsp.replay(path, rank=r)`, rank r's program fed what it received.

May import: bsp.core, bsp.base, bsp.world, bsp.run's rank runner and
outcome, bsp.checkpoint.  Data enters from the transport (recording) or a
record file (replay); a replay's program sees only what was recorded."""
