"""Operations on a running deployment, journaled and resumable (architecture §5).

- `switchover`: move a shard's master to a caught-up replica on purpose, through Sentinel,
  with no acknowledged write lost (`steer` owns what is asked of Sentinel; `guard` recovers a
  run that dies);
- `reshard`: add or remove a shard online (`reshard_plan`, `reshard_copy`, `reshard_shard`,
  `topofile`);
- shared: `journal` (the record a killed run leaves for the next one), `nodes` (bounded
  commands to one Redis node), `endpoint` (what the client endpoint routes, and switching
  its ring), `interrupt` (Ctrl-C at safe points, and the test hook that kills a run at a
  named step).

Nothing here decides who is master: `core.decide_masters` (through `data.masters`) does.
"""
