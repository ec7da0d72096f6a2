"""The safety net of a run that deletes, around the pure planner (used by :mod:`kitgc.run`).

The operator keeps working while a run plans, so what the first read of the cluster showed
is not trusted alone:

* **fresh kits count as building** (:mod:`.planner`): a kit created after this run began
  was building while the registry was scanned, even if a later read shows it ``Ready``;
* **read again** just before deleting, and **recheck** after the kits are deleted
  (:mod:`.reread`): plan with the union of the reads, delete only what every plan agrees on;
* **remember index children** before deleting their index (:mod:`.children`);
* **stop** after the deletions in flight on SIGTERM, or when the sweep Lease is lost
  (:mod:`.stop`).
"""
