"""spec: what to run. YAML schema -> validated search space -> one trial's params; the metric names and which
way is better; the one cost model (ASHA rungs, trial budgets, expected trial-epochs).

May import: sweeper.errors, pydantic, yaml. Nothing else of sweeper's; never torch, ray or pandas.
"""
