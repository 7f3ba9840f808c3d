"""calibrate: seconds per epoch of each architecture on this machine, for spec/cost.py's time model.

- `epochs`: times a trial's own train_epoch and evaluate per architecture (cached), and `timing`, what sweep.json
  keeps: seconds per epoch per architecture and the trials at once;
- `load`: helper processes that train the same architecture meanwhile, as the sweep's other trials would.

A room of its own: it imports the training room (the trial's own code, timed) and torch and ray inside its
functions, and nothing of search, driver, session or recovery.
"""

from sweeper.run.calibrate.epochs import DataShape, timing

__all__ = ["DataShape", "timing"]
