"""Scaling out: where checks run and how many processes' results become one scan.

- :mod:`.executors` — a Dask cluster behind the engine's Executor seam (mutual TLS,
  loopback-only plain TCP, no pickle accepted back);
- :mod:`.wire` — the JSON form in which an observation comes back from a worker;
- :mod:`.vetting` — an observation must belong to the target it was asked for;
- :mod:`.sharding` — stable slices of an inventory (``--shard K/N``);
- :mod:`.merge` — the stores of a sharded run folded into one scan (``rempart db merge``).

Workers observe; one process evaluates and writes the store.
"""
