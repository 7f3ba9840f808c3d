"""store: where results live and how they are laid out.

Storage (a local folder, file://, s3://, gs://: any pyarrow filesystem) resolved once; a sweep's folder and the
names of its files; sweep.json and the lock; the Parquet schema, its writer and readers; the trial-state
vocabulary and the one rule for "best"; listing sweeps.

Modules:
  storage  --storage resolved once into a Storage, and one sweep's folder under it (atomic reads and writes)
  files    the names of the files in a sweep's folder (trials.parquet, epochs.parquet, spec.yaml, sweep.json, ...)
  state    sweep.json: the version, the space's fingerprint, the sessions and experiments of launch/resume/extend
  lock     `.lock`: the pid and host of the process running a sweep; a second run is refused while it lives
  schema   the columns of trials.parquet and epochs.parquet
  parquet  reading and writing those files atomically, with pyarrow alone (or a pandas frame for reports)
  pair     the two files as one pair that agrees after a kill at any moment: written in generations, read whole
  writer   ResultsWriter: trial and epoch rows gathered as results arrive, flushed into the sweep's folder
  trials   a trial row's vocabulary: TrialState, StoppedBy, Ended, Errored (what resume does with errored
           trials) and the one rule for "best"
  sweeps   the sweeps under a storage, and the folders of a sweep's Ray experiments

May import: sweeper.errors, sweeper.version, sweeper.spec, pyarrow (pandas only where a frame is asked for). Never
torch or ray.
"""
