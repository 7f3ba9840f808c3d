"""Worked examples of sweeping your own code with sweeper (see examples/README.md).

- `examples.resnet:build`: a small ResNet factory, swept beside the built-in CNN on Fashion-MNIST
  (search_spaces/examples/resnet_fmnist.yaml).
- `examples.tabular`: scikit-learn's bundled breast-cancer and digits data sets as `sweeper.Dataset` sources, and
  an MLP factory for feature vectors (search_spaces/examples/cancer_mlp.yaml). Needs scikit-learn
  (`pip install -e .[examples]`).

Importing this package imports nothing heavy: torch and scikit-learn are imported by the modules that need them.
"""
