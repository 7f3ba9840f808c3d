"""spec: what to run. YAML schema -> validated search space (search type, conditional keys, repeats) -> one
trial's params; the metric names and which way is better; the one cost model (ASHA rungs, trial budgets,
expected trial-epochs); what `extend` may change in a space.

Modules:
  schema      the YAML file's top-level settings (pydantic models) and AxisKind, the search domains
  metrics     the metrics a trial records, which a sweep may optimise, and which way is better
  params      the keys one trial is configured with, their defaults and which model family uses each
  usermodels  your own models as the spec knows them (`models:`): name, module:function, keys; no import of them
  conditions  `when` on a searched key, parsed; defaults, value equality and key order for conditional keys
  space       Axis (one searched key, its AxisKind and what it can take) and Space: the trials it plans, one
              trial's params
  loader      YAML text or file -> a validated Space (its `when`s included); every violation one line naming file,
              key and rule
  cost        the one cost model: ASHA rungs, each trial's epoch budget, expected trial-epochs and wall time
  asha        how often a trial passes each ASHA rung, from playing the sweep through Ray's own promotion rule
  grow        what `sweeper extend` may change in a sweep's space (it adds trials, never alters those that ran)

May import: sweeper.errors, pydantic, yaml. Nothing else of sweeper's; never torch, ray or pandas.
"""
