"""Printing and saving the tables: "mean ± std" cells, a title and a note, CSV and Markdown files.

`readable` turns each value/std column pair of a table into one "mean ± std" column and the
``degenerate`` count into a "⚠ k/n" flag; `show` displays that in a notebook under the table's
title and note (``df.attrs``), and `save_table` writes ``results/<name>.csv`` (the numbers as
they are, value and std apart) and ``results/<name>.md`` (as `readable` prints it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._common import missing

__all__ = ["readable", "show", "save_table"]


def _pair(value: Any, std: Any) -> str | None:
    """"0.7810 ± 0.0123", or "0.7810" without a std, or None (printed "—") without a value."""
    if pd.isna(value):
        return None
    text = f"{float(value):.4f}"
    return text if pd.isna(std) else f"{text} ± {float(std):.4f}"


def _flag(count: Any, of: Any) -> str:
    """"⚠ 2/3" for 2 degenerate runs of 3, "⚠" for a single flagged run, "" for none."""
    if isinstance(count, (bool, np.bool_)):
        return "⚠" if count else ""
    if missing(count) or not int(count):
        return ""
    return f"⚠ {int(count)}/{int(of)}" if not missing(of) else f"⚠ {int(count)}"


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """The table as `show` and `save_table`'s Markdown print it (the CSV keeps the numbers apart).

    Each ``X`` / ``X std`` column pair becomes one column ``X`` holding "mean ± std" (4 decimals;
    just the mean when the std is nan, i.e. one seed), and a ``degenerate`` or ``near-constant``
    column becomes "⚠ k/n" (k flagged runs of the row's n seeds), "⚠" (a flagged single run) or blank.
    """
    out = df.copy()
    for column in list(df.columns):
        if isinstance(column, str) and f"{column} std" in df.columns:
            out[column] = [_pair(v, e) for v, e in zip(df[column], df[f"{column} std"])]
            out = out.drop(columns=f"{column} std")
    of_column = df.attrs.get("degenerate_of")
    of = df[of_column] if of_column in df.columns else [None] * len(df)
    for flag in ("degenerate", "near-constant"):
        if flag in df.columns:
            out[flag] = [_flag(k, n) for k, n in zip(df[flag], of)]
    out.attrs = dict(df.attrs)
    return out


def show(df: pd.DataFrame) -> None:
    """Display a table in a notebook under its title and note (from ``df.attrs``), as `readable` prints it."""
    from IPython.display import Markdown, display

    caption = " — ".join(part for part in (f"**{df.attrs['title']}**" if df.attrs.get("title") else "",
                                           df.attrs.get("note", "")) if part)
    if caption:
        display(Markdown(caption))
    display(readable(df))


def save_table(df: pd.DataFrame, name: str, results_dir: str | Path = "results") -> tuple[Path, Path]:
    """Write ``results_dir/<name>.csv`` and ``results_dir/<name>.md``; return both paths.

    The CSV holds the numbers as they are (separate value and std columns). The Markdown file
    starts with the table's title and note (from ``df.attrs``) and prints the table as `readable`
    does: "mean ± std" cells, other numbers with 4 decimals and blanks as "—".
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"table name must be a plain file stem, got {name!r}")
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv_path)
    shown = readable(df)
    shown = shown.astype(object).where(shown.notna(), None)
    parts = []
    if df.attrs.get("title"):
        parts.append(f"### {df.attrs['title']}\n")
    if df.attrs.get("note"):
        parts.append(f"{df.attrs['note']}\n")
    parts.append(shown.to_markdown(floatfmt=".4f", missingval="—"))
    md_path.write_text("\n".join(parts) + "\n")
    return csv_path, md_path
