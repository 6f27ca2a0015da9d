"""Launching a program: `bsp.run` and everything between it and the ranks.

- `bsp_run`: bsp.run and available_processors, in the launching process;
- `backends`: the one place that names the backends; `launcher`: the
  interface a backend's launcher implements (bsp.fork.backend, mpi_backend.backend);
- `rank_runner`: what every rank does (run the program, end the protocol,
  report an Outcome); `observers`: who watches a rank (profile, record, logs);
- `outcome`: how a rank ended, and the ranks' outcomes as results or one error;
- `output_relay`, `stdio`: the ranks' output; `signals`: handlers for a run;
- `signature`: the program's call checked before any rank starts;
- `profile_request`: what bsp.run does with profile= and trace=;
- `cores`, `mpi_environment`: the cores a rank may use, MPI launchers' variables.

May import: bsp.objects, bsp.core, bsp.base, bsp.world, bsp.observe,
bsp.recordings, bsp.checkpoint, and the backends through `backends` alone.
Data enters as the program and its arguments, leaves as the ranks' results."""
