"""The superstep engine: what every rank runs under its data objects.

- `engine`: one rank's outboxes, the exchange that ends a superstep, and the
  sync rules (failure, mismatch, exit) applied to every rank's sync record;
  `observed_engine` the same engine measuring each superstep for observers.
- `sync_record`: the fixed-size control record each rank contributes to every
  exchange, the kinds of call, and the verdict over all ranks' records.
- `wire` (pickle 5 with out-of-band buffers, dill as the fallback) and
  `plain_arrays` (a hand-written pickle of plain numpy arrays): objects to bytes.
- `sender`: the send call of a message queue, the commonest call of a
  program, compiled in one piece.
- `mailbox`: framing of one rank's traffic to one destination, per channel.
- `buffers`, `align`: aligned, reused memory for message data.
- `transport`: the interface a backend implements (bsp.fork, mpi_backend).

May import: bsp.base, bsp.errors.  Data enters as Python objects queued by
the data objects (bsp.objects, bsp.arrays), leaves as byte frames per
destination through a Transport, and comes back as objects per channel."""
