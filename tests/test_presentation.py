"""Presentation tables and figures from fake results: paper columns beside ours, nothing dropped, files written."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from fake_results import eight, eight_seeds, fake

from fapkit.presentation import direction, display, figures, run_views, tables
from fapkit.registry import method_title, paper_methods


def test_baseline_table_has_paper_columns_and_all_eight_rows() -> None:
    table = tables.baseline_table(eight(), metric="DEO", target="Attractive")
    assert list(table.index) == [method_title(m) for m in paper_methods()]
    for column in ("acc", "DEO", "PR.", "achieved PR.", "paper acc (CelebA)", "paper DEO (CelebA)"):
        assert column in table.columns
    assert table.loc["Ours (FAPrune)", "DEO"] == pytest.approx(0.21)
    assert table.loc["Ours (FAPrune)", "paper DEO (CelebA)"] == pytest.approx(0.2149)
    assert table.loc["Normal training", "PR."] == 0.0 and table.loc["SGDP", "PR."] == pytest.approx(0.8)
    assert "SynthFaces" in table.attrs["note"] and "CelebA" in table.attrs["note"]


def test_row_where_faprune_loses_is_kept_and_missing_runs_are_blank() -> None:
    runs = [r for r in eight(alpha=1.0) if r.method != "scratch"]
    table = tables.baseline_table(runs, metric="DI")
    assert len(table) == 8
    assert table.loc["LMW", "DI"] == pytest.approx(0.38)
    assert math.isnan(table.loc["Train from Scratch", "acc"])
    assert table.loc["Train from Scratch", "paper DI (CelebA)"] == pytest.approx(0.3802)


def test_target_without_paper_panel_keeps_our_rows() -> None:
    table = tables.baseline_table(eight("Smiling"), metric="DEO")
    assert len(table) == 8 and table["acc"].notna().all()
    assert table.filter(like="paper").isna().all().all()
    assert "no panel" in table.attrs["note"]


def test_duplicate_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="two results for the same table row"):
        tables.baseline_table(eight() + [fake("sgdp")], metric="DEO")


def test_duplicate_row_and_seed_is_refused_naming_both_configs() -> None:
    runs = [fake("sgdp", seed=0), fake("sgdp", seed=1), fake("sgdp", seed=1, deo=0.3)]
    with pytest.raises(ValueError, match=r"same table row 'SGDP' and seed 1") as err:
        tables.baseline_table(runs, metric="DEO")
    assert "first: RunConfig(" in str(err.value) and "second: RunConfig(" in str(err.value)
    with pytest.raises(ValueError, match="seed 1"):
        direction.direction_summary(runs + [fake("faprune", seed=1)], metric="DEO")


def test_ratio_arch_and_random_init_tables() -> None:
    runs = [fake("normal")] + [fake("faprune", ratio=r, deo=r / 3) for r in (0.7, 0.8)]
    t4 = tables.ratio_table(runs, metric="DEO")
    assert list(t4.index) == ["Dense (Normal training)", "Ours 70%", "Ours 80%", "Ours 90%", "Ours 95%"]
    assert math.isnan(t4.loc["Ours 95%", "acc"]) and t4.loc["Ours 95%", "paper DEO (CelebA)"] == pytest.approx(0.3215)

    t5 = tables.arch_table([fake(m, arch="resnet18") for m in ("normal", "faprune")], metric="DI")
    assert t5.loc["ResNet18 (80%)", "paper DI (CelebA)"] == pytest.approx(0.4849)
    assert "MobileNet v2 (Dense)" in t5.index

    six = [fake("normal"), fake("adv_debias")] + [fake(m, init="random", ratio=0.8) for m in ("sgdp", "faprune")]
    t6 = tables.random_init_table(six, metric="DEO")
    assert t6.loc["Ours (FAPrune) 80% (random init)", "paper DEO (CelebA)"] == pytest.approx(0.1959)
    assert t6.loc["Adversarial Debiasing (trained, dense)", "paper acc (CelebA)"] == pytest.approx(0.7877)


def test_metrics_and_group_tables_accept_json_group_keys() -> None:
    r = fake("normal", str_keys=True)
    groups = run_views.group_confusion(r)
    assert list(groups.index) == ["Male=0", "Male=1"]
    assert (groups["TP"] + groups["FN"] + groups["FP"] + groups["TN"] == groups["count"]).all()
    metrics = run_views.metrics_table([r])
    assert metrics.loc["Normal training", "paper DEO"] == pytest.approx(0.5352)


def test_direction_summary_reports_losses_honestly() -> None:
    summary = direction.direction_table({("Attractive", "DEO"): eight_seeds(),
                                         ("Attractive", "DI"): eight_seeds(alpha=1.0)})
    deo = summary[summary["metric"] == "DEO"].set_index("baseline")
    assert deo.loc["SGDP", "verdict"] == "fairer"
    assert deo.loc["LMW", "verdict"] == "less fair"  # the fake makes FAPrune lose to LMW on DEO
    assert deo["paper_fairer"].all()
    text = direction.direction_text(summary)
    assert text.startswith("FAPrune was fairer in 3 of 4 comparisons, less fair in 1, not distinguishable in 0")
    assert "→ less fair" in text


def test_one_seed_calls_no_direction() -> None:
    summary = direction.direction_summary(eight(), metric="DEO")
    assert (summary["verdict"] == "not distinguishable").all() and (summary["seeds"] == 1).all()
    assert summary[["low", "high", "acc_low", "acc_high"]].isna().all().all()
    assert summary.set_index("baseline").loc["SGDP", "delta"] == pytest.approx(0.21 - 0.50)
    assert (summary["note"] == "1 seed: no interval").all()
    text = direction.direction_text(summary)
    assert text.startswith("FAPrune was fairer in 0 of 2 comparisons, less fair in 0, not distinguishable in 2")
    assert "no interval from 1 seed" in text


def test_save_table_writes_csv_and_markdown(tmp_path: Path) -> None:
    table = tables.baseline_table(eight(), metric="DEO")
    csv_path, md_path = display.save_table(table, "table2_Attractive", tmp_path / "results")
    assert csv_path == tmp_path / "results" / "table2_Attractive.csv" and md_path.suffix == ".md"
    back = pd.read_csv(csv_path, index_col=0)
    assert list(back.index) == list(table.index) and "paper DEO (CelebA)" in back.columns
    text = md_path.read_text()
    assert "| Ours (FAPrune)" in text and "0.2149" in text and "SynthFaces" in text
    with pytest.raises(ValueError):
        display.save_table(table, "../escape", tmp_path)


def test_figures_write_pngs(tmp_path: Path) -> None:
    figs = tmp_path / "figures"
    random_runs = [fake(m, init="random", ratio=r) for m in ("sgdp", "faprune") for r in (0.8, 0.9)]
    made = {
        "f1.png": figures.figure1(eight(), metric="DEO", path=figs / "f1.png"),
        "f1di.png": figures.figure1(eight(alpha=1.0) + eight("Smiling", alpha=1.0), metric="DI", path=figs / "f1di.png"),
        "f3.png": figures.figure3(random_runs, [fake("normal")], metric="DI", path=figs / "f3.png"),
        "curves.png": figures.training_curves(fake(), path=figs / "curves.png"),
        "groups.png": figures.group_rates_figure([fake("normal"), fake()], path=figs / "groups.png"),
        "layers.png": figures.layer_sparsity_figure(fake(), path=figs / "layers.png"),
    }
    for name, fig in made.items():
        assert (figs / name).stat().st_size > 1000, name
        assert fig.axes
    with pytest.raises(ValueError, match="PNG"):
        figures.training_curves(fake(), path=figs / "curves.pdf")


def test_direction_with_undefined_di_is_not_counted() -> None:
    runs = eight(alpha=1.0)
    runs[-1].metrics["di"] = float("nan")  # FAPrune selected nobody
    summary = direction.direction_summary(runs, metric="DI")
    assert summary["verdict"].isna().all() and "undefined" in summary["note"].iloc[0]
    assert (summary["seeds"] == 0).all()
    assert direction.direction_text(summary).startswith("FAPrune was fairer in 0 of 0 comparisons")


# ----------------------------------------------------------------------------- over seeds


def three_seeds() -> list:
    """FAPrune and SGDP over seeds 0–2 with round numbers, LMW over seed 0 only."""
    faprune = [fake("faprune", acc=a, deo=d, seed=s) for s, a, d in ((0, 0.80, 0.20), (1, 0.82, 0.25), (2, 0.84, 0.30))]
    sgdp = [fake("sgdp", acc=a, deo=d, seed=s) for s, a, d in ((0, 0.81, 0.30), (1, 0.84, 0.37), (2, 0.84, 0.44))]
    return faprune + sgdp + [fake("lmw", acc=0.78, deo=0.1, seed=0)]


def test_results_frame_has_seed_and_degenerate() -> None:
    frame = tables.results_frame([fake(seed=3), fake("sgdp", seed=4, sel1=1.0)])
    assert list(frame["seed"]) == [3, 4] and list(frame["degenerate"]) == [False, True]


def test_table_over_three_seeds_reports_mean_and_sample_std() -> None:
    table = tables.baseline_table(three_seeds(), metric="DEO")
    for column in ("acc", "acc std", "DEO", "DEO std", "seeds", "degenerate", "PR.", "achieved PR."):
        assert column in table.columns
    ours = table.loc["Ours (FAPrune)"]
    # acc 0.80/0.82/0.84: mean 0.82, deviations ±0.02 → sd sqrt(0.0008/2) = 0.02; DEO 0.20/0.25/0.30: sd 0.05
    assert ours["acc"] == pytest.approx(0.82) and ours["acc std"] == pytest.approx(0.02)
    assert ours["DEO"] == pytest.approx(0.25) and ours["DEO std"] == pytest.approx(0.05)
    assert ours["seeds"] == 3 and ours["degenerate"] == 0 and ours["PR."] == pytest.approx(0.8)
    # SGDP acc 0.81/0.84/0.84: mean 0.83, squared deviations 0.0004 + 0.0001 + 0.0001 → sd sqrt(0.0006/2)
    assert table.loc["SGDP", "acc"] == pytest.approx(0.83)
    assert table.loc["SGDP", "acc std"] == pytest.approx(0.017320508075688772)
    lmw = table.loc["LMW"]
    assert lmw["seeds"] == 1 and lmw["DEO"] == pytest.approx(0.1) and math.isnan(lmw["DEO std"])
    assert table.loc["Fair-LMW", "seeds"] == 0 and math.isnan(table.loc["Fair-LMW", "acc"])
    note = table.attrs["note"]
    assert "seeds 0, 1, 2" in note and "rows differ in their number of seeds" in note
    assert "degenerate" not in note


def test_note_with_the_same_seeds_in_every_row() -> None:
    runs = [r for r in three_seeds() if r.method != "lmw"]
    note = tables.baseline_table(runs, metric="DEO").attrs["note"]
    assert "mean ± std over 3 seeds (seeds 0, 1, 2)" in note
    assert "rows differ" not in note


def test_degenerate_runs_are_counted_and_explained(tmp_path: Path) -> None:
    runs = [fake("faprune", acc=0.8, deo=0.0, seed=0, sel0=0.0, sel1=0.0), fake("faprune", seed=1),
            fake("faprune", seed=2), fake("sgdp", seed=0)]
    table = tables.baseline_table(runs, metric="DEO")
    assert table.loc["Ours (FAPrune)", "degenerate"] == 1 and table.loc["SGDP", "degenerate"] == 0
    note = table.attrs["note"]
    assert "Ours (FAPrune) (1 of 3)" in note
    assert "predicts (almost) one class inside a sensitive group" in note and "trivially fair" in note
    shown = display.readable(table)
    assert shown.loc["Ours (FAPrune)", "degenerate"] == "⚠ 1/3" and shown.loc["SGDP", "degenerate"] == ""
    _, md_path = display.save_table(table, "degenerate", tmp_path)
    assert "⚠ 1/3" in md_path.read_text()


def test_save_table_prints_mean_pm_std_and_csv_keeps_numbers(tmp_path: Path) -> None:
    table = tables.baseline_table(three_seeds(), metric="DEO")
    shown = display.readable(table)
    assert "acc std" not in shown.columns and "DEO std" not in shown.columns
    assert shown.loc["Ours (FAPrune)", "acc"] == "0.8200 ± 0.0200"
    assert shown.loc["Ours (FAPrune)", "DEO"] == "0.2500 ± 0.0500"
    assert shown.loc["LMW", "DEO"] == "0.1000"  # one seed: no std
    assert pd.isna(shown.loc["Fair-LMW", "acc"])  # not run: printed as "—"
    csv_path, md_path = display.save_table(table, "seeds", tmp_path)
    back = pd.read_csv(csv_path, index_col=0)
    assert back.loc["Ours (FAPrune)", "acc std"] == pytest.approx(0.02) and back.loc["SGDP", "seeds"] == 3
    text = md_path.read_text()
    assert "| 0.8200 ± 0.0200 |" in text and "| 0.2500 ± 0.0500 |" in text
    assert "| Fair-LMW" in text and "—" in text and "0.2149" in text


def test_ratio_table_over_seeds() -> None:
    runs = [fake("normal", seed=s, acc=0.8 + 0.01 * s) for s in (0, 1)]
    runs += [fake("faprune", ratio=0.8, seed=s, deo=d) for s, d in ((0, 0.2), (1, 0.4))]
    table = tables.ratio_table(runs, metric="DEO")
    assert table.loc["Ours 80%", "DEO"] == pytest.approx(0.3)
    assert table.loc["Ours 80%", "DEO std"] == pytest.approx(math.sqrt(0.02))
    assert table.loc["Dense (Normal training)", "acc"] == pytest.approx(0.805)
    assert table.loc["Ours 90%", "seeds"] == 0
    assert "mean ± std over 2 seeds (seeds 0, 1)" in table.attrs["note"]


def test_undefined_di_is_left_out_of_the_mean_and_said() -> None:
    runs = [fake("faprune", alpha=1.0, di=v, seed=s) for s, v in ((0, 0.4), (1, float("nan")), (2, 0.6))]
    table = tables.baseline_table(runs, metric="DI")
    assert table.loc["Ours (FAPrune)", "DI"] == pytest.approx(0.5) and table.loc["Ours (FAPrune)", "seeds"] == 3
    assert table.loc["Ours (FAPrune)", "DI std"] == pytest.approx(math.sqrt(0.02))
    assert "DI is undefined in 1 run(s) (a model predicts no positives" in table.attrs["note"]


def test_metrics_table_marks_degenerate_runs() -> None:
    table = run_views.metrics_table([fake("normal"), fake("faprune", sel0=1.0)])
    assert list(table["degenerate"]) == [False, True]
    assert "trivially fair" in table.attrs["note"]
    assert "trivially fair" not in run_views.metrics_table([fake("normal")]).attrs["note"]


def test_direction_with_a_clear_and_an_unclear_comparison() -> None:
    lmw = [fake("lmw", acc=0.8, deo=d, seed=s) for s, d in ((0, 0.30), (1, 0.15), (2, 0.40))]
    runs = [r for r in three_seeds() if r.method != "lmw"] + lmw
    summary = direction.direction_summary(runs, metric="DEO").set_index("baseline")
    sgdp = summary.loc["SGDP"]
    # d = 0.20−0.30, 0.25−0.37, 0.30−0.44 = −0.10, −0.12, −0.14: mean −0.12, sd 0.02,
    # half-width t_{0.975,2}·0.02/√3 = 4.302652729749464·0.011547005 = 0.049682754
    assert sgdp["seeds"] == 3 and sgdp["ours"] == pytest.approx(0.25) and sgdp["theirs"] == pytest.approx(0.37)
    assert sgdp["delta"] == pytest.approx(-0.12)
    assert sgdp["low"] == pytest.approx(-0.12 - 0.04968275423500662)
    assert sgdp["high"] == pytest.approx(-0.12 + 0.04968275423500662)
    assert sgdp["ratio"] == pytest.approx(0.25 / 0.37) and sgdp["verdict"] == "fairer"
    # accuracy d = −0.01, −0.02, 0.00: mean −0.01, sd 0.01, half-width 0.024841377
    assert sgdp["acc_delta"] == pytest.approx(-0.01)
    assert (sgdp["acc_low"], sgdp["acc_high"]) == pytest.approx((-0.01 - 0.024841377117503, -0.01 + 0.024841377117503))
    assert sgdp["degenerate"] == 0 and sgdp["note"] == "" and bool(sgdp["paper_fairer"]) is True
    # d = −0.10, +0.10, −0.10: mean −0.0333, sd 0.11547, half-width 0.28685 → the interval holds 0
    other = summary.loc["LMW"]
    assert other["delta"] == pytest.approx(-0.1 / 3)
    assert other["low"] < 0 < other["high"] and other["verdict"] == "not distinguishable"
    assert other["high"] - other["delta"] == pytest.approx(4.302652729749464 * math.sqrt(0.04 / 3) / math.sqrt(3))


def test_direction_pairs_seeds_only_where_both_ran() -> None:
    faprune = [fake("faprune", acc=0.8, deo=d, seed=s) for s, d in ((0, 0.9), (1, 0.2), (2, 0.3))]
    sgdp = [fake("sgdp", acc=0.8, deo=d, seed=s) for s, d in ((1, 0.5), (2, 0.7), (3, 0.0))]
    summary = direction.direction_summary(faprune + sgdp, metric="DEO").set_index("baseline")
    row = summary.loc["SGDP"]
    assert row["seeds"] == 2  # seeds 1 and 2
    assert row["ours"] == pytest.approx(0.25) and row["theirs"] == pytest.approx(0.6)
    # d = −0.3, −0.4: mean −0.35, sd 0.0707107, half-width 12.7062047·0.0707107/√2 = 0.6353102
    assert row["delta"] == pytest.approx(-0.35)
    assert (row["low"], row["high"]) == pytest.approx((-0.35 - 0.6353102368087347, -0.35 + 0.6353102368087347))
    assert row["verdict"] == "not distinguishable"
    assert row["note"] == "seed 0 only for FAPrune, seed 3 only for SGDP: not paired"
    lmw = summary.loc["LMW"]
    assert lmw["seeds"] == 0 and pd.isna(lmw["verdict"]) and lmw["note"] == "LMW not run"


def test_direction_drops_seeds_with_undefined_di_and_counts_degenerate_runs() -> None:
    faprune = [fake("faprune", di=v, seed=s, sel0=sel) for s, v, sel in
               ((0, 0.5, 0.3), (1, 0.6, 0.0), (2, float("nan"), 0.3))]
    sgdp = [fake("sgdp", di=v, seed=s) for s, v in ((0, 0.3), (1, 0.4), (2, 0.3))]
    row = direction.direction_summary(faprune + sgdp, metric="DI").set_index("baseline").loc["SGDP"]
    assert row["seeds"] == 2 and row["delta"] == pytest.approx(0.2) and row["degenerate"] == 1
    assert row["note"] == "DI undefined in seed 2 (a model predicts no positives)"
    text = direction.direction_text(direction.direction_summary(faprune + sgdp, metric="DI"))
    assert "⚠ 1 of the 4 paired runs are degenerate" in text and "DI undefined in seed 2" in text


def test_direction_text_wording() -> None:
    runs = [r for r in three_seeds() if r.method != "lmw"]
    text = direction.direction_text(direction.direction_summary(runs, metric="DEO"))
    head, *lines = text.splitlines()
    assert head.startswith("FAPrune was fairer in 1 of 1 comparisons, less fair in 0, not distinguishable in 0 ")
    assert "Student-t 95 % interval" in head and "in the paper's tables: fairer in 1 of 1" in head
    assert lines == [
        "- Attractive, DEO: FAPrune vs SGDP over 3 seeds: 0.2500 vs 0.3700, difference −0.1200 "
        "[95 % CI −0.1697, −0.0703] → fairer (FAPrune/SGDP = 0.68); accuracy −1.00 points [−3.5, +1.5]; "
        "the paper reports FAPrune fairer.",
        "- Attractive, DEO: FAPrune vs LMW: not compared (LMW not run).",
    ]


def test_direction_table_states_the_interval_method() -> None:
    table = direction.direction_table({("Attractive", "DEO"): three_seeds()})
    assert list(table.columns) == ["target", "metric", "baseline", "seeds", "ours", "theirs", "delta", "low", "high",
                                   "ratio", "verdict", "acc_delta", "acc_low", "acc_high", "degenerate", "near_constant",
                                   "uninformed", "paper_fairer", "note"]
    assert "paired over seeds, Student-t 95 % interval" in table.attrs["note"]
    assert "excludes 0" in table.attrs["note"]


def test_figures_over_seeds_write_pngs(tmp_path: Path) -> None:
    runs = eight_seeds() + [fake("lmw", seed=3, sel0=0.0)]  # LMW: 4 seeds, one degenerate
    fig1 = figures.figure1(runs, metric="DEO", path=tmp_path / "f1.png")
    assert (tmp_path / "f1.png").stat().st_size > 1000
    assert "mean ± std over 3–4 seeds" in fig1.get_suptitle()
    assert "degenerate" in fig1.get_suptitle()
    ours = fig1.axes[0]
    # FAPrune over seeds 0–2 (eight_seeds): acc 0.80/0.81/0.82, DEO 0.21/0.22/0.23 → drawn at (0.81, 0.22)
    centres = [tuple(c.get_offsets()[0]) for c in ours.collections if len(c.get_offsets()) == 1]
    assert any(x == pytest.approx(0.81) and y == pytest.approx(0.22) for x, y in centres)
    bars = [c for c in ours.containers if c.has_yerr and c.has_xerr]
    assert len(bars) == 8  # one per method, all with ≥ 2 seeds
    hatched = [c for c in ours.collections if c.get_hatch()]
    assert len(hatched) == 1  # LMW, whose seed-3 run is degenerate
    searched = [fake(m, init="random", ratio=r, seed=s, acc=0.7 + 0.01 * s, di=0.4 + 0.02 * s)
                for m in ("sgdp", "faprune") for r in (0.8, 0.9) for s in (0, 1, 2)]
    dense = [fake("normal", seed=s, acc=0.8 + 0.01 * s) for s in (0, 1, 2)]
    fig3 = figures.figure3(searched, dense, metric="DI", path=tmp_path / "f3.png")
    assert (tmp_path / "f3.png").stat().st_size > 1000
    assert "±1 std" in fig3.get_suptitle()
    ax_acc = fig3.axes[0]
    label = "Ours (FAPrune), Attractive (3 seeds)"
    means = [line.get_ydata() for line in ax_acc.get_lines() if line.get_label() == label]
    assert len(means) == 1 and list(means[0]) == pytest.approx([0.71, 0.71])  # per-ratio means over seeds


def test_training_curves_draw_the_discriminator_advantage(tmp_path: Path) -> None:
    run = fake()
    plain = figures.training_curves(run, path=None)
    assert not any("advantage" in ax.get_title() for ax in plain.axes)
    for h in run.history:
        h.update(train_adv_di=0.05 * h["epoch"], train_adv_deo_y0=-0.01, train_adv_deo_y1=0.02)
    fig = figures.training_curves(run, path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    panel = next(ax for ax in fig.axes if "discriminator advantage (nats)" in ax.get_title())
    assert {line.get_label() for line in panel.get_lines()} >= {"DI", "DEO, y=0", "DEO, y=1"}
    assert any(list(line.get_ydata()) == [0.0, 0.0] for line in panel.get_lines())  # the zero line


def test_adversary_table_averages_the_advantage_over_seeds_and_drops_heads_that_never_trained() -> None:
    runs = []
    for seed, (warm, last) in enumerate([(0.10, 0.02), (0.20, 0.04), (0.30, 0.00)]):
        r = fake("faprune", alpha=0.0, seed=seed)
        r.history[0].update(warmup_steps=10, warmup_adv_deo_y0=warm, warmup_adv_deo_y1=2 * warm)
        for h in r.history:
            h.update(train_adv_deo_y0=last, train_adv_deo_y1=last)
        runs.append(r)
    debias = fake("adv_debias", alpha=1.0)
    debias.history[0].update(warmup_adv_di=0.05)
    debias.history[-1].update(train_adv_di=-0.01)
    table = run_views.adversary_table([*runs, debias, fake("sgdp")])
    assert list(table.index) == ["Adversarial Debiasing", "Ours (FAPrune)"]
    ours = table.loc["Ours (FAPrune)"]
    assert ours["seeds"] == 3 and ours["α"] == 0.0
    assert ours["warm-up DEO y=0"] == pytest.approx(0.2) and ours["warm-up DEO y=0 std"] == pytest.approx(0.1)
    assert ours["warm-up DEO y=1"] == pytest.approx(0.4) and ours["last epoch DEO y=0"] == pytest.approx(0.02)
    assert math.isnan(ours["warm-up DI"])  # the DI head does not train at α = 0
    assert table.loc["Adversarial Debiasing", "last epoch DI"] == pytest.approx(-0.01)
    assert "last epoch DEO y=1" in display.readable(table).columns


def test_layer_table_has_the_layers_then_the_two_totals_also_for_records_of_fapkit_0_1_0(tmp_path: Path) -> None:
    from fapkit.cache import RECORD, load_result
    from fapkit.records import load_json, save_json

    result = fake("sgdp")
    table = run_views.layer_table(result)
    assert list(table["name"]) == ["features.0", "fc", "[prunable]", "[all parameters]"]
    assert table["ratio"].iloc[2] == 1 - 99 / 496 and table["ratio"].iloc[3] == (496 - 99) / 600
    # a record written before the totals were kept apart held them as two rows among the layers
    save_json(tmp_path / RECORD, result.summary())
    legacy = load_json(tmp_path / RECORD)
    legacy["layers"] += [{"name": "[prunable]", "type": "", "shape": [], "n": 496, "kept": 99, "ratio": 1 - 99 / 496},
                         {"name": "[all parameters]", "type": "", "shape": [], "n": 600, "kept": 203,
                          "ratio": (496 - 99) / 600}]
    del legacy["mask_totals"]
    save_json(tmp_path / RECORD, legacy)
    loaded = load_result("sgdp", result.config, tmp_path, model=False)
    assert loaded.layers == result.layers and loaded.mask_totals == result.mask_totals
    pd.testing.assert_frame_equal(run_views.layer_table(loaded), table)


def test_methods_outside_the_paper_are_marked_in_tables_direction_and_figure_1(tmp_path):
    runs = eight_seeds() + [fake("fairgrape", acc=0.79, deo=0.45 + 0.01 * s, seed=s) for s in (0, 1, 2)]
    table = tables.baseline_table(runs, metric="DEO")
    assert "FairGRAPE †" in table.index and "Ours (FAPrune)" in table.index
    assert "† a method the paper's tables 2–3 do not have" in table.attrs["note"]
    assert "†" not in tables.baseline_table(eight_seeds(), metric="DEO").attrs["note"]
    verdicts = direction.direction_summary(runs, metric="DEO")
    assert list(verdicts["baseline"]) == ["SGDP", "LMW", "FairGRAPE †"]  # run, so compared; CEAG was not run
    assert verdicts.iloc[2]["seeds"] == 3 and verdicts.iloc[2]["paper_fairer"] is None
    fig = figures.figure1(runs, metric="DEO", path=tmp_path / "f1.png")
    assert "FairGRAPE †" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_table1_puts_normal_fairgrape_and_faprune_beside_the_paper_s_numbers():
    runs = [fake(m, acc=a, deo=d + 0.01 * s, arch="mobilenet_v2", seed=s)
            for s in (0, 1) for m, a, d in (("normal", 0.8, 0.5), ("fairgrape", 0.78, 0.45), ("faprune", 0.77, 0.3),
                                             ("sgdp", 0.79, 0.5))]
    table = tables.fairgrape_table(runs, metric="DEO")
    assert list(table.index) == ["Normal training", "FairGRAPE", "Ours (FAPrune)"]  # SGDP is no row of table 1
    assert table.loc["FairGRAPE", "DEO"] == pytest.approx(0.455) and table.loc["FairGRAPE", "seeds"] == 2
    assert table.loc["FairGRAPE", "paper DEO (CelebA)"] == 0.5155 and table.loc["Ours (FAPrune)", "paper PR."] == 0.8
    di = tables.fairgrape_table([r for r in runs if r.method != "fairgrape"], metric="DI")
    assert di.loc["FairGRAPE", "seeds"] == 0 and di.loc["FairGRAPE", "paper DI (CelebA)"] == 0.2315  # a row, not run
    vs_table1 = direction.direction_summary(runs, metric="DEO", baselines=["fairgrape"], paper_table="1").iloc[0]
    assert vs_table1["verdict"] == "fairer" and bool(vs_table1["paper_fairer"]) is True  # table 1a: 0.3390 < 0.5155
    assert direction.direction_summary(runs, metric="DEO", baselines=["fairgrape"]).iloc[0]["paper_fairer"] is None
    note = direction.direction_table({("Attractive", "DEO"): runs}, baselines=["fairgrape"], paper_table="1").attrs["note"]
    assert "the paper's table 1." in note


def test_accuracy_change_table_averages_each_group_s_change_over_seeds():
    runs = []
    for s, (c0, c1) in enumerate(((-0.02, -0.06), (-0.04, -0.08))):
        r = fake("ceag", seed=s)
        r.metrics.update(group_acc_change={0: c0, 1: c1}, acc_change_std=abs(c1 - c0) / 2, max_excess_gap=0.02)
        runs.append(r)
    runs.append(fake("normal"))  # dense: no parent, left out
    table = tables.accuracy_change_table(runs)
    assert list(table.index) == ["CEAG †"]
    assert table.loc["CEAG †", "Δacc 0"] == pytest.approx(-0.03) and table.loc["CEAG †", "Δacc 1"] == pytest.approx(-0.07)
    assert table.loc["CEAG †", "Δacc std"] == pytest.approx(0.02) and table.loc["CEAG †", "seeds"] == 2


# ----------------------------------------------------------------------------- k sensitive groups
def _three_group_result(*, names: bool = True, sel: tuple[float, ...] = (0.2, 0.5, 0.7)):
    """A fake run whose sensitive attribute has three groups (as `fapkit.fairness.metrics.group_rates` gives them)."""
    r = fake("faprune", sensitive="Age_Group")
    r.metrics["groups"] = {g: {"count": 50 + 10 * g, "n_pos": 20, "n_neg": 30 + 10 * g, "selection_rate": s,
                               "tpr": min(1.0, s + 0.2), "fpr": max(0.0, s - 0.2), "accuracy": 0.7 + 0.05 * g}
                           for g, s in enumerate(sel)}
    if names:
        r.metrics["group_names"] = ["Age_Group=0-19", "Age_Group=20-39", "Age_Group=40-59"]
    return r


def test_group_views_show_all_k_groups_by_name(tmp_path: Path) -> None:
    r = _three_group_result()
    table = run_views.group_confusion(r)
    assert list(table.index) == ["Age_Group=0-19", "Age_Group=20-39", "Age_Group=40-59"]
    assert list(table["count"]) == [50, 60, 70] and (table["TP"] + table["FN"] + table["FP"] + table["TN"]
                                                     == table["count"]).all()
    assert "over the 3 groups" in table.attrs["note"]
    assert list(run_views.group_confusion(_three_group_result(names=False)).index) == [
        "Age_Group=0", "Age_Group=1", "Age_Group=2"]
    fig = figures.group_rates_figure([r, fake("normal")], path=tmp_path / "groups3.png")
    assert (tmp_path / "groups3.png").stat().st_size > 1000
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Age_Group=0-19 (n=50)", "Age_Group=20-39 (n=60)", "Age_Group=40-59 (n=70)"]
    assert len(fig.axes[0].patches) == 3 * 4 and len(fig.axes[1].patches) == 2 * 4  # binary panel unchanged
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["Male=0 (n=100)", "Male=1 (n=100)"]


def test_split_rates_and_sample_grid_with_k_groups(tmp_path: Path) -> None:
    from fapkit.data import SynthFaces

    splits = {s: SynthFaces(s, sensitive="Age_Group", size=8, n=200, cache_dir=None) for s in ("train", "test")}
    rates = run_views.split_rates(splits, target="Attractive", sensitive="Age_Group")
    for name in ("0-19", "20-39", "40-59", "60+"):
        assert f"n Age_Group={name}" in rates.columns and f"P(Attractive=1 | Age_Group={name})" in rates.columns
    assert rates.loc["train", [c for c in rates.columns if c.startswith("n ")]].sum() == 200
    p = rates.loc["test", [c for c in rates.columns if c.startswith("P(Attractive=1 |")]]
    assert rates.loc["test", "gap"] == pytest.approx(p.max() - p.min())
    assert rates.loc["test", "DI of the labels"] == pytest.approx(p.min() / p.max())
    assert "max − min" in rates.attrs["note"]
    fig = figures.sample_grid(splits["train"], target="Attractive", sensitive="Age_Group", per_cell=2,
                              path=tmp_path / "grid.png")
    assert len(fig.axes) == 8 * 2 and "Age_Group=60+" in fig.axes[6 * 2].get_ylabel()
    # binary: the columns as before
    binary = run_views.split_rates({"test": SynthFaces("test", size=8, n=100, cache_dir=None)}, target="Attractive",
                                   sensitive="Male")
    assert list(binary.columns) == ["n", "n Male=0", "P(Attractive=1 | Male=0)", "n Male=1", "P(Attractive=1 | Male=1)",
                                    "P(Attractive=1)", "gap", "DI of the labels"]
    assert binary.loc["test", "gap"] == pytest.approx(binary.loc["test", "P(Attractive=1 | Male=1)"]
                                                      - binary.loc["test", "P(Attractive=1 | Male=0)"])
    both = SynthFaces("test", sensitive=("Male", "Young"), size=8, n=100, cache_dir=None)
    grid = figures.sample_grid(both, target="Attractive", sensitive=["Male", "Young"], per_cell=1, path=None)
    assert len(grid.axes) == 8 and grid.axes[2].get_ylabel().startswith("Male=0\nYoung=1\nAttractive=0")
    assert "sensitive Male|Young" in grid._suptitle.get_text()
