"""report: what `sweeper report` shows, read from the sweeps' Parquet files and spec.yaml, never from a running
sweep. It flows: the sweeps' files -> one frame -> statistics -> sections of formatted cells -> each output.

Its modules, in that order:
- `metrics`: which columns are metrics (the standard six and a space's declared ones), their modes, and which
  one the learning curves and the final-score plot draw;
- `sources`: which sweeps a report reads; each one's trials.parquet, its spec.yaml, and its epochs.parquet read
  once, on first use (Sweep.epochs), for every output that needs it;
- `frame`: the Report: every sweep's trials as one frame, filtered (--where), grouped (--group-by), sorted;
- `stats`: configurations, their 95% intervals, and which are tied with the best;
- `pairs`: which of the study's differences between neighbouring variants our replicates confirm;
- `importance`: parameter importance (PED-ANOVA) with bootstrap intervals, and marginal effects;
- `audit`: the ASHA audit (rank correlation per rung, possible late bloomers), from epochs.parquet;
- `sections`: the Report as tables of formatted cells, alike in every format;
- `analysis`: the statistics (stats, pairs, importance, audit) as such tables;
- `header_footer`: the lines around the tables: header, pending trials, errors, footer;
- `terminal`: the rich tables printed at the terminal (--format table);
- `markdown_csv`: the Markdown report (report.md) and the CSV of the trials (trials.csv) as text;
- `html`: the self-contained, offline HTML page (--format html, report.html): the answer, figures, then tables;
- `html_answer`: the box at the page's top that answers in plain words (best, ≈, worse, the study, compute);
- `html_assets`: the page's inlined style and scripts (sorting a table, opening a folded one);
- `html_figures`: the HTML page's interactive plotly figures;
- `png_plots`: the matplotlib PNG plots written to --out;
- `plot_data`: what the PNG plots and the HTML figures both draw: trials sampled, their colours, curve points;
- `out_folder`: the files written to --out (report.md, trials.csv, the PNG plots, report.html);
- `respec`: the shown trials as a spec's parameters and variants (--format yaml), to train them again.

May import sweeper.errors, sweeper.spec, sweeper.store, pandas, numpy, pyarrow, scipy, optuna (its importance
evaluators only), plotly, rich, matplotlib and yaml; never run (no torch, no ray), watch or cli.
"""
