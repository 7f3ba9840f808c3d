"""run: who runs the trials. Its public face is `launch`, `resume`, `extend` and their `Outcome`; the CLI imports
it inside the commands that run sweeps (never for --help, status, list or report).

Rooms, each with its rule (import-linter contracts in pyproject.toml keep them):
- `training`: data, models, augmentation, schedules, the per-trial loop, export: plain PyTorch, never ray or optuna;
- `search`: grid plans, the Optuna searcher, an extension's plan: Ray Tune's search API and Optuna, never torch;
- `driver`: the Tuner, the recorder, start-up, cluster, Ray's log: Ray, never torch;
- `calibrate`: timing an epoch for the cost model (training's code under load), nothing of search or driver.
And the modules between them:
- `trial`: what Ray runs in a trial's process, the one bridge from Ray to training (imports both inside it);
- `preflight`: checks that need this machine (storage, resources) before anything is written;
- `session`: the sequence launch, resume and extend share (checks, data, cluster, calibration, lock, Ray, recorder,
  Tuner, a session of sweep.json), written once;
- `recovery`: every rule that makes a resumed sweep agree with the files on disk;
- `history`: the epochs each checkpoint carries (history.jsonl), written in a trial, read by `recovery` without torch;
- `provenance`: the code and data a sweep's trials were computed from (hashes in sweep.json), checked on resume;
- `commands`: `launch`, `resume` and `extend`, each thin over `session`;
- `renamed`: old module paths (0.1's flat run/) that pickles in Ray's saved experiments name.

May import sweeper.errors, sweeper.version, sweeper.spec and sweeper.store, never watch, report or cli: it reports
progress to any object with the hooks of driver.recorder.Progress.
"""

from sweeper.run import renamed
from sweeper.run.commands import extend, launch, resume
from sweeper.run.session import Outcome

renamed.install()

__all__ = ["Outcome", "extend", "launch", "resume"]
