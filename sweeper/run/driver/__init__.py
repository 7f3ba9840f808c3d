"""driver: the sweep's own process around Ray Tune. Never imports torch (import-linter keeps it so): the driver
of a sweep loads the data with numpy and hands it to the trials.

- `tuner`: the scheduler (ASHA or FIFO), the trainable with its data and resources, a new Tuner;
- `loggers`: Ray's result.json and progress.csv loggers, and no TensorBoard logger (it would import torch);
- `recorder`: the Tune callback that writes every epoch and every trial's end to Parquet and tells the live view;
- `startup`: starting (or joining) Ray with the Tuner's imports done meanwhile, and where the start-up time goes;
- `cluster`: joining a Ray cluster: every node must see the storage, and runs the trials' code;
- `shipping`: your own source trees to every node (Ray's runtime_env py_modules), and a check that every node
  that runs trials imports your code, this machine's version, before anything is written;
- `raylog`: Ray's own output into the sweep's ray.log (or through, with --verbose).

Its modules are imported by path (nothing is re-exported here), so that importing the package does not start
importing Ray.
"""
