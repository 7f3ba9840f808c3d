"""store: where results live and how they are laid out.

Storage (a local folder, file://, s3://, gs://: any pyarrow filesystem) resolved once; a sweep's folder and the
names of its files; sweep.json and the lock; the Parquet schema, its writer and readers; the trial-state
vocabulary and the one rule for "best"; listing sweeps.

May import: sweeper.errors, sweeper.spec, pyarrow (pandas only where a frame is asked for). Never torch or ray.
"""
