"""Presentation: our runs as the paper's tables and figures, apart from the core of the kit.

Nothing is imported here; a caller names the module it reads, e.g.
``from fapkit.presentation import tables, run_views, direction, figures, display``.

* `fapkit.presentation.tables` -- the joined paper tables: ours (mean ± std over seeds) beside the
  paper's published numbers, tables 2/3 (`baseline_table`), 4 (`ratio_table`), 5 (`arch_table`)
  and 6 (`random_init_table`), and `results_frame`, one row per run.
* `fapkit.presentation.run_views` -- views of single runs and of the data: `metrics_table`,
  `group_confusion`, `layer_table`, `history_frame`, `split_rates`, and `adversary_table` (was
  the adversarial game live?).
* `fapkit.presentation.direction` -- the direction analysis: FAPrune against each baseline, paired
  by seed, with a Student-t 95 % interval and a verdict (`direction_summary`, `direction_table`,
  `direction_text`).
* `fapkit.presentation.figures` -- the figures (figure 1, figure 3, training curves, group rates,
  per-layer sparsity, metric bars, sample grids), each written as a PNG and returned.
* `fapkit.presentation.display` -- printing and saving a table: `readable` ("mean ± std" cells),
  `show` (in a notebook) and `save_table` (CSV and Markdown).
"""
