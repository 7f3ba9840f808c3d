"""training: plain PyTorch, the code a trial runs. Never imports ray or optuna (import-linter keeps it so), so it
runs, is tested and is benchmarked without either.

- `data`: the Fashion-MNIST files (or a torchvision root, or a download), staged, read with numpy and split;
- `sources`: `data.source`, a data set of your own (`sweeper.Dataset`): called, checked, split, fingerprinted;
- `usercode`: your own code named `module.path:function` (models, data sources): imported, its signature read;
- `models`: the built-in model families (logreg, mlp, cnn) built from a trial's params, and your own through their
  factories, for the data's input shape and classes;
- `factories`: `models:` read into a space (each factory's keys and their checks), every reachable architecture
  built once at the data's shape before anything starts;
- `augment`: random shifts and flips of a batch, from the trial's own generator;
- `schedules`: the learning-rate schedules over a trial's budget;
- `loop`: the per-trial loop (train an epoch, evaluate, report, checkpoint, stop early) and its checkpoints;
- `context`: `ctx`, what your own loop (`trainable:`) is called with: data, seed, restore, report, finish;
- `ownloop`: a trial of your own loop, `train(ctx, **params)`, seeded and ended as the loop left it;
- `rehearsal`: your loop rehearsed before a sweep starts (stop after epoch 1, restart, epoch 2 follows), timed;
- `pick`: the trial an export holds (named, or the sweep's best that ran to its end), its last checkpoint read;
- `card`: the model card, model.json (formats /1 and /2), and an export's file names: built, read back checked;
- `onnxfile`: a model as model.onnx (for /2 best effort, with why it was left out);
- `export`: `sweeper export`, a trial's model checked and written as safetensors + json + onnx, atomically;
- `loading`: an export loaded back (`sweeper.load_model`): your factory imported, the weights fitted strictly;
- `scoring`: an export scored on the test split its card names (`sweeper evaluate`).

Its modules are imported by path (nothing is re-exported here): importing this package must not import torch, as
the driver loads the data with `data` and imports torch only to calibrate, to download or to check your code.
"""
