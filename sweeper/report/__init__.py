"""report: Parquet -> one frame (sources.py, frame.py) -> statistics (stats.py: configurations, 95% intervals,
which are tied with the best; importance.py; audit.py: the ASHA audit) -> sections (sections.py, analysis.py,
lines.py) -> the terminal (terminal.py), Markdown and CSV files (files.py), the offline HTML page (html.py,
figures.py) and PNG plots (plots.py).

May import sweeper.errors, sweeper.spec, sweeper.store, pandas, numpy, scipy, optuna (its importance evaluators
only), plotly, rich and matplotlib; never run (no torch, no ray), watch or cli.
"""
