"""The distributed data objects a program uses, each over the engine:

- `data_object`: the bases (a channel of its own on the engine; collective
  creation, checked at the next sync);
- `var` (one value per rank), `coarray` (a numpy array per rank, with
  `coarray_index` parsing its indices and `coarray_elements` batching single
  element puts and gets), `queue` (message channels), `future` (a get's result);
- `collectives` (broadcast, reduce, ..., each one superstep), `group` (the
  ranks of a split, with collectives of their own), `grid` (a processor grid).

May import: bsp.core, bsp.base, bsp.errors.  Data enters through calls on
the objects, leaves through the engine's outboxes, and arrives at the sync."""
