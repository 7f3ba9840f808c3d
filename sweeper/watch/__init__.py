"""watch: what a person sees while a sweep runs or after. A Tracker of trials by outcome, the live panel and
plain progress lines, `status` and `list` read from a sweep's folder, and the dry-run listing.

May import sweeper.errors, sweeper.spec, sweeper.store and rich; never run (no torch, no ray), report or cli.
"""
