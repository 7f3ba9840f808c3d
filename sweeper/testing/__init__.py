"""testing: harnesses for tests and benchmarks; never imported by the package itself (import-linter keeps it so).

- `cluster`: a real multi-node Ray cluster on one machine (a head and worker nodes, each with its own resources).
"""
