"""spec: what to run. YAML schema -> validated search space (search type, conditional keys, repeats) -> one
trial's params; the metric names and which way is better; the one cost model (ASHA rungs, trial budgets,
expected trial-epochs); what `extend` may change in a space.

May import: sweeper.errors, pydantic, yaml. Nothing else of sweeper's; never torch, ray or pandas.
"""
