"""watch: what a person sees while a sweep runs or after. A Tracker of trials by outcome, the live panel and
plain progress lines, `status` and `list` read from a sweep's folder, and the dry-run listing.

Modules:
  tracker  Tracker: what is known about a sweep's trials while it runs (or from its folder), and the time left
  live     LiveView: a sweep's progress as a live panel, or as plain lines with --quiet or off a terminal
  status   `sweeper status` and `sweeper list`: a sweep's progress read from its folder
  dryrun   `launch --dry-run`: the expanded trials or the axes each draws, their count and expected cost

May import sweeper.errors, sweeper.spec, sweeper.store and rich; never run (no torch, no ray), report or cli.
"""
