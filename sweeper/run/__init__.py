"""run: who runs the trials. The data, the models, the per-trial loop, the Tuner (launch, resume), the Tune
callback that records results, preflight checks, joining a cluster, and Ray's logs.

The only package that imports torch or ray; the CLI imports it inside the commands that run sweeps. May import
sweeper.errors, sweeper.spec and sweeper.store, never watch, report or cli: it reports progress to any object
with the hooks of recorder.Progress.
"""
