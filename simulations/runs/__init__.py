"""The run service, one module per part.

- ``constants``: speeds, limits and the statuses a live run can have;
- ``errors``: what the service raises for its callers;
- ``admission``: whether one more live run (or curve job) may start, counted per
  visitor, per client address and for the whole site, under a lock;
- ``lifecycle``: creating a run (admitted first), reading its status, handing it to a
  worker;
- ``access``: who may control a run;
- ``controls``: checking a control message against the run's engine and queueing it;
- ``checkpoints``: sealing a run's state so that only what this app wrote is restored;
- ``driver``: one run's state machine (frames, controls, housekeeping), with no thread;
- ``store``: the database side of a scheduler, on a thread of its own: loading runs to
  adopt them and writing checkpoints in batches;
- ``scheduler``: the one loop per worker process that drives all of its runs;
- ``supervisor``: handing runs that no worker holds to a worker;
- ``retention``: pruning the checkpoints that stopped runs no longer need.
"""
