"""Report tables and figures from fake results: paper columns beside ours, nothing dropped, files written."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from fake_results import eight, fake

from fapkit import report
from fapkit.config import METHOD_TITLES, METHODS


def test_baseline_table_has_paper_columns_and_all_eight_rows() -> None:
    table = report.baseline_table(eight(), metric="DEO", target="Attractive")
    assert list(table.index) == [METHOD_TITLES[m] for m in METHODS]
    for column in ("acc", "DEO", "PR.", "achieved PR.", "paper acc (CelebA)", "paper DEO (CelebA)"):
        assert column in table.columns
    assert table.loc["Ours (FAPrune)", "DEO"] == pytest.approx(0.21)
    assert table.loc["Ours (FAPrune)", "paper DEO (CelebA)"] == pytest.approx(0.2149)
    assert table.loc["Normal training", "PR."] == 0.0 and table.loc["SGDP", "PR."] == pytest.approx(0.8)
    assert "SynthFaces" in table.attrs["note"] and "CelebA" in table.attrs["note"]


def test_row_where_faprune_loses_is_kept_and_missing_runs_are_blank() -> None:
    runs = [r for r in eight(alpha=1.0) if r.method != "scratch"]
    table = report.baseline_table(runs, metric="DI")
    assert len(table) == 8
    assert table.loc["LMW", "DI"] == pytest.approx(0.38)
    assert math.isnan(table.loc["Train from Scratch", "acc"])
    assert table.loc["Train from Scratch", "paper DI (CelebA)"] == pytest.approx(0.3802)


def test_target_without_paper_panel_keeps_our_rows() -> None:
    table = report.baseline_table(eight("Smiling"), metric="DEO")
    assert len(table) == 8 and table["acc"].notna().all()
    assert table.filter(like="paper").isna().all().all()
    assert "no panel" in table.attrs["note"]


def test_duplicate_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="two results for the same table row"):
        report.baseline_table(eight() + [fake("sgdp")], metric="DEO")


def test_ratio_arch_and_random_init_tables() -> None:
    runs = [fake("normal")] + [fake("faprune", ratio=r, deo=r / 3) for r in (0.7, 0.8)]
    t4 = report.ratio_table(runs, metric="DEO")
    assert list(t4.index) == ["Dense (Normal training)", "Ours 70%", "Ours 80%", "Ours 90%", "Ours 95%"]
    assert math.isnan(t4.loc["Ours 95%", "acc"]) and t4.loc["Ours 95%", "paper DEO (CelebA)"] == pytest.approx(0.3215)

    t5 = report.arch_table([fake(m, arch="resnet18") for m in ("normal", "faprune")], metric="DI")
    assert t5.loc["ResNet18 (80%)", "paper DI (CelebA)"] == pytest.approx(0.4849)
    assert "MobileNet v2 (Dense)" in t5.index

    six = [fake("normal"), fake("adv_debias")] + [fake(m, init="random", ratio=0.8) for m in ("sgdp", "faprune")]
    t6 = report.random_init_table(six, metric="DEO")
    assert t6.loc["Ours (FAPrune) 80% (random init)", "paper DEO (CelebA)"] == pytest.approx(0.1959)
    assert t6.loc["Adversarial Debiasing (trained, dense)", "paper acc (CelebA)"] == pytest.approx(0.7877)


def test_metrics_and_group_tables_accept_json_group_keys() -> None:
    r = fake("normal", str_keys=True)
    groups = report.group_confusion(r)
    assert list(groups.index) == ["Male=0", "Male=1"]
    assert (groups["TP"] + groups["FN"] + groups["FP"] + groups["TN"] == groups["count"]).all()
    metrics = report.metrics_table([r])
    assert metrics.loc["Normal training", "paper DEO"] == pytest.approx(0.5352)


def test_direction_summary_reports_losses_honestly() -> None:
    summary = report.direction_table({("Attractive", "DEO"): eight(), ("Attractive", "DI"): eight(alpha=1.0)})
    deo = summary[summary["metric"] == "DEO"].set_index("baseline")
    assert bool(deo.loc["SGDP", "fairer"]) is True
    assert bool(deo.loc["LMW", "fairer"]) is False  # the fake makes FAPrune lose to LMW on DEO
    assert deo["paper_fairer"].all()
    text = report.direction_text(summary)
    assert text.startswith("FAPrune was fairer in 3 of 4 comparisons")
    assert "not fairer" in text


def test_save_table_writes_csv_and_markdown(tmp_path: Path) -> None:
    table = report.baseline_table(eight(), metric="DEO")
    csv_path, md_path = report.save_table(table, "table2_Attractive", tmp_path / "results")
    assert csv_path == tmp_path / "results" / "table2_Attractive.csv" and md_path.suffix == ".md"
    back = pd.read_csv(csv_path, index_col=0)
    assert list(back.index) == list(table.index) and "paper DEO (CelebA)" in back.columns
    text = md_path.read_text()
    assert "| Ours (FAPrune)" in text and "0.2149" in text and "SynthFaces" in text
    with pytest.raises(ValueError):
        report.save_table(table, "../escape", tmp_path)


def test_figures_write_pngs(tmp_path: Path) -> None:
    figs = tmp_path / "figures"
    random_runs = [fake(m, init="random", ratio=r) for m in ("sgdp", "faprune") for r in (0.8, 0.9)]
    made = {
        "f1.png": report.figure1(eight(), metric="DEO", path=figs / "f1.png"),
        "f1di.png": report.figure1(eight(alpha=1.0) + eight("Smiling", alpha=1.0), metric="DI", path=figs / "f1di.png"),
        "f3.png": report.figure3(random_runs, [fake("normal")], metric="DI", path=figs / "f3.png"),
        "curves.png": report.training_curves(fake(), path=figs / "curves.png"),
        "groups.png": report.group_rates_figure([fake("normal"), fake()], path=figs / "groups.png"),
        "layers.png": report.layer_sparsity_figure(fake(), path=figs / "layers.png"),
    }
    for name, fig in made.items():
        assert (figs / name).stat().st_size > 1000, name
        assert fig.axes
    with pytest.raises(ValueError, match="PNG"):
        report.training_curves(fake(), path=figs / "curves.pdf")


def test_direction_with_undefined_di_is_not_counted() -> None:
    runs = eight(alpha=1.0)
    runs[-1].metrics["di"] = float("nan")  # FAPrune selected nobody
    summary = report.direction_summary(runs, metric="DI")
    assert summary["fairer"].isna().all() and "undefined" in summary["note"].iloc[0]
    assert report.direction_text(summary).startswith("FAPrune was fairer in 0 of 0 comparisons")
