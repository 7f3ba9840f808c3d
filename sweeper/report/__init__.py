"""report: Parquet -> one frame (sources.py, frame.py) -> sections (sections.py) -> the terminal (terminal.py),
Markdown, HTML and CSV files (files.py) and plots (plots.py).

May import sweeper.errors, sweeper.spec, sweeper.store, pandas, numpy, rich and matplotlib; never run (no
torch, no ray), watch or cli.
"""
