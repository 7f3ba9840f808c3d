"""sweeper: YAML search spaces -> Ray Tune sweeps of PyTorch trials -> Parquet -> reports."""

__version__ = "0.1.0"
