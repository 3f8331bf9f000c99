"""The robustness suite's summaries (`fapkit.bench.robustness`): paired comparisons and the per-method table."""
import math

import pytest
from fake_results import fake, groups

from fapkit.bench import robustness
from fapkit.export import deo_standard_error


def _runs(method: str, deos: list[float], accs: list[float]) -> list:
    out = []
    for seed, (deo, acc) in enumerate(zip(deos, accs)):
        r = fake(method, deo=deo, acc=acc, seed=seed)
        r.valid_metrics = {"deo": deo + 0.01, "acc": acc, "groups": groups()}
        out.append(r)
    return out


def test_against_pairs_seeds_and_reads_the_interval_as_a_direction():
    ours = _runs("faprune", [0.10, 0.12, 0.11], [0.80, 0.79, 0.81])
    theirs = _runs("sgdp", [0.30, 0.33, 0.31], [0.81, 0.80, 0.82])
    out = robustness._against(ours, theirs)
    assert out["ratio"] == pytest.approx(0.11 / 0.31333, rel=1e-3)
    assert out["delta"] == pytest.approx(-0.20333, rel=1e-3) and out["high"] < 0
    assert out["verdict"] == "fairer" and out["acc_delta"] == pytest.approx(-0.01)
    worse = robustness._against(theirs, ours)
    assert worse["verdict"] == "less fair" and worse["low"] > 0


def test_against_better_picks_the_lower_mean_deo_of_sgdp_and_lmw():
    ours = _runs("faprune", [0.10, 0.12, 0.11], [0.80] * 3)
    bases = {"sgdp": _runs("sgdp", [0.30, 0.33, 0.31], [0.8] * 3), "lmw": _runs("lmw", [0.2, 0.25, 0.2], [0.8] * 3)}
    out = robustness._against_better(ours, bases)
    assert out["better"] == "lmw" and out["better_deo"] == pytest.approx(0.21667, rel=1e-3)


def test_methods_table_shows_every_method_the_games_effect_and_the_validation_error():
    bases = {"normal": _runs("normal", [0.40, 0.42, 0.41], [0.82] * 3),
             "sgdp": _runs("sgdp", [0.30, 0.33, 0.31], [0.81] * 3),
             "lmw": _runs("lmw", [0.20, 0.25, 0.20], [0.80] * 3)}
    fap = _runs("faprune", [0.10, 0.12, 0.11], [0.79] * 3)
    summary = robustness._summary(bases["lmw"])
    assert summary["valid_deo"] == pytest.approx(0.22667, rel=1e-3)
    assert summary["valid_deo_se"] == pytest.approx(deo_standard_error(groups()))
    assert 0 < summary["valid_deo_se"] < 1 and not math.isnan(summary["deo_std"])
    row = {"task": "toy", "game": robustness._against(fap, bases["sgdp"]),
           "methods": {**{m: robustness._summary(r) for m, r in bases.items()}, "faprune": robustness._summary(fap)}}
    table = robustness.methods_markdown([row, {"task": "old row without methods"}])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[2].startswith("| toy | 0.410 ± 0.010 (0.820)")
    assert "fairer" in lines[2] and "–" in lines[2]  # no tuned FAPrune in this row
    assert f"{summary['valid_deo_se']:.3f} |" in lines[2]
