"""The multi-host lab: a topology's hosts as network namespaces on a private bridge, each
running exactly what `render --host` wrote for it, with partitions and drills across hosts.

- `plan`: the hosts, their names, addresses and namespaces; the commands that build, cut and
  heal the network (pure);
- `units`: a rendered unit's commands, and the command line that runs one inside a host with
  its own files mounted over the real paths (pure);
- `net`: `ip` / `iptables-restore` commands, entering a host's namespace, what the kernel says;
- `hosts`: starting and stopping the units of a host by PID and process group;
- `state`: `lab.json`, what the lab runs;
- `checks`: readiness of each layer;
- `lab`: the composition (`Lab.up`, `down`, `kill_host`, `partition`, `heal`, …);
- `scenarios`, `observe`, `figures`, `drill`: drills across hosts (`redkeeper drill --lab`).

docs/lab.md describes it for users.
"""
