"""search: which trials run, as Ray Tune search objects. Never imports torch (import-linter keeps it so).

- `plans`: a sweep's plan (param space, search algorithm, trial count): grid points, or random/TPE search;
- `searcher`: the Optuna searcher of random and TPE search (conditional keys, budget, replicates, history) and its
  concurrency limiter, with the bookkeeping run/recovery.py's rules change on resume;
- `variants`: the grid sweep's generator (Ray's, restored with a slot only for the trials Ray restored) and what it
  reads of Ray's saved experiment state;
- `grow`: what an extension runs (the planned trials that have not run), and a warm start's trials.

Its modules are imported by path (nothing is re-exported here), so that importing the package does not import
Optuna and Ray Tune before a sweep needs them.
"""
