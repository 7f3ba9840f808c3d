"""The names of the files in a sweep's folder `<storage>/<name>/`, besides Ray's own experiment state."""

TRIALS_FILE = "trials.parquet"  # one row per trial (schema.py)
EPOCHS_FILE = "epochs.parquet"  # one row per trial and epoch
PENDING_TRIALS_FILE = ".trials.pending.parquet"  # trials.parquet's next version, written first (pair.py)
SPEC_FILE = "spec.yaml"  # the search space's YAML, verbatim, as launched (or last extended)
STATE_FILE = "sweep.json"  # fingerprint, sessions, state (state.py)
LOCK_FILE = ".lock"  # the pid and host of the process running the sweep (lock.py)
LOG_FILE = "ray.log"  # Ray's own output, unless --verbose
