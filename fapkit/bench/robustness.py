"""Our own check against overfitting SynthFaces: FAPrune on tasks unlike tables 2–3 (DESIGN.md §12).

``python -m fapkit.bench.robustness`` runs every task of `TASKS` on 3 seeds with the kit's defaults
(quick preset) and with `fapkit.tune` (``tolerance=0.03``), and writes ``results/robustness.json``,
``results/robustness.md`` and ``figures/robustness.png``. Per task it reports

* the adversary after its warm-up: the held-out advantage of FAPrune's heads (mean, min over seeds),
  the reference of what the predictions carry about z, and how many runs were flagged uninformed;
* FAPrune's DEO against the better (lower mean DEO) of SGDP and LMW: the ratio of means, the paired
  difference with its Student-t 95 % interval over seeds, and the paired accuracy difference; with
  the defaults (λ = 1) and with the λ `tune` chose on validation.

The tasks differ from tables 2–3 in kind: tabular data from `fapkit.data.tabular` through a user's
MLP and loaders (y depending on z, weakly; a small training split; a 10 % minority; k = 3 groups),
another SynthFaces target/attribute pair on the small CNN, and SynthFaces on MobileNetV2 and
ShuffleNetV2. No setting of the kit was chosen on them.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .. import stats
from ..data.tabular import TabularConfig, mlp, tabular_loaders

SEEDS = (0, 1, 2)
TOLERANCE = 0.03


@dataclass(frozen=True)
class Task:
    """One task: a tabular problem for a user's MLP (`tabular`), or kit `settings` (dataset, arch, ...)."""

    name: str
    differs: str                       # how it differs from tables 2–3
    tabular: TabularConfig | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        """`fapkit.run` keyword arguments: the user's model factory (seeded per run) and loaders, or the kit settings.

        The loaders are fixed (as a user's are); each seed's MLP starts from its own init.
        """
        if self.tabular is None:
            return dict(self.settings)
        train, valid, test = tabular_loaders(self.tabular)
        width = self.tabular.features + self.tabular.groups
        return {"model": lambda s: mlp(width, seed=s), "train": train, "valid": valid, "test": test,
                **self.settings}


_SYNTH = dict(size=32, n_train=2000, n_valid=2000, n_test=4000, n_monitor=1000)
TASKS: tuple[Task, ...] = (
    Task("tabular", "tabular data, a user's MLP and loaders, y depends on z", TabularConfig(seed=11)),
    Task("tabular-weak", "the same with a weak dependence and a faint proxy of z",
         TabularConfig(dependence=0.4, proxy=0.8, seed=12)),
    Task("tabular-small", "800 training samples", TabularConfig(n_train=800, seed=13)),
    Task("tabular-minority", "a 10 % minority group", TabularConfig(minority=0.1, seed=14)),
    Task("tabular-k3", "k = 3 groups", TabularConfig(groups=3, seed=15)),
    Task("synth-smiling-young", "another SynthFaces pair (Smiling / Young, train correlation 0.5), 2,000 images",
         settings=dict(arch="resnet18", target="Smiling", sensitive="Young", correlation=0.5, **_SYNTH)),
    Task("synth-mobilenet", "MobileNetV2 on SynthFaces (Attractive / Male)", settings=dict(arch="mobilenet_v2", **_SYNTH)),
    Task("synth-shufflenet", "ShuffleNetV2 on SynthFaces (Attractive / Male)",
         settings=dict(arch="shufflenet_v2_x1_0", **_SYNTH)),
)


def _baselines(task: Task, seeds: Sequence[int], runs_dir: str) -> dict[str, list[Any]]:
    """normal, SGDP and LMW over the seeds (the kit's cache, or one call per seed sharing the dense model)."""
    from ..runner import run

    out: dict[str, list[Any]] = {"normal": [], "sgdp": [], "lmw": []}
    for seed in seeds:
        for method in out:
            out[method].append(run(method, seed=seed, runs_dir=runs_dir, **task.inputs()))
    return out


def _tuned(task: Task, seeds: Sequence[int], runs_dir: str) -> Any:
    """`fapkit.tune` of FAPrune at `TOLERANCE` over the same seeds."""
    from ..tuning import tune

    return tune("faprune", tolerance=TOLERANCE, seeds=seeds, runs_dir=runs_dir, **task.inputs())


def _against(ours: list[Any], theirs: list[Any]) -> dict[str, Any]:
    """Our DEO and accuracy against `theirs`, paired over seeds: ratio of means, paired interval, verdict."""
    deo = stats.paired_interval([r.deo for r in ours], [r.deo for r in theirs])
    acc = stats.paired_interval([r.acc for r in ours], [r.acc for r in theirs])
    mean_ours, mean_theirs = stats.mean_std(r.deo for r in ours)[0], stats.mean_std(r.deo for r in theirs)[0]
    return {"deo": mean_ours, "their_deo": mean_theirs,
            "ratio": mean_ours / mean_theirs if mean_theirs else math.nan,
            "delta": deo.mean, "low": deo.low, "high": deo.high,
            "verdict": stats.verdict(deo, lower_is_fairer=True),
            "acc_delta": acc.mean, "acc_low": acc.low, "acc_high": acc.high,
            "uninformed": sum(bool(r.uninformed) for r in ours), "at_chance": sum(bool(r.at_chance) for r in ours)}


def _against_better(ours: list[Any], bases: dict[str, list[Any]]) -> dict[str, Any]:
    """FAPrune's DEO and accuracy against the better of SGDP and LMW (lower mean DEO), paired over seeds."""
    better = min(("sgdp", "lmw"), key=lambda m: stats.mean_std(r.deo for r in bases[m])[0])
    out = _against(ours, bases[better])
    return {"better": better, "better_deo": out["their_deo"], **out}


def _summary(runs: list[Any]) -> dict[str, Any]:
    """Test DEO and accuracy (mean, std over seeds), validation DEO and its binomial standard error."""
    from ..export import deo_standard_error

    deo, deo_std, _ = stats.mean_std(r.deo for r in runs)
    acc, acc_std, _ = stats.mean_std(r.acc for r in runs)
    return {"deo": deo, "deo_std": deo_std, "acc": acc, "acc_std": acc_std, "at_chance": sum(r.at_chance for r in runs),
            "valid_deo": stats.mean_std(r.valid_metrics.get("deo", math.nan) for r in runs)[0],
            "valid_deo_se": stats.mean_std(deo_standard_error(r.valid_metrics.get("groups", {}))
                                           for r in runs)[0]}


def _warmup(runs: list[Any]) -> dict[str, Any]:
    """The adversary after its warm-up, over seeds: held-out advantage, reference, statuses."""
    first = [r.history[0] for r in runs]
    adv = [(h.get("warmup_heldout_adv") or [math.nan])[-1] for h in first]
    return {"advantage_mean": stats.mean_std(adv)[0], "advantage_min": min(adv),
            "reference_mean": stats.mean_std(h.get("warmup_reference", math.nan) for h in first)[0],
            "passes": [h.get("warmup_passes") for h in first],
            "statuses": [h.get("warmup_status") for h in first]}


#: The warm-up variants the diagnosis compares on one starting model: (heads' input, stopping rule).
VARIANTS = (("prob", "plateau"), ("prob", "informed"), ("logit", "plateau"), ("logit", "informed"))


def diagnose(task: Task, dense: list[Any]) -> list[dict[str, Any]]:
    """The warm-up alone, per seed and `VARIANTS`, on FAPrune's and Adversarial Debiasing's starting models.

    FAPrune starts from the dense model under its 80 % magnitude mask (the score init), Adversarial
    Debiasing from the dense model itself. Reports the spread of the starting probabilities and
    logits, the reference (nats), and each variant's last held-out advantage, passes and status.
    """
    import copy

    import torch

    from ..config import make_config
    from ..fairness.discriminators import FairnessDiscriminator
    from ..masking import attach_scores
    from ..methods.adversarial import starting_predictions, warm_up_discriminator
    from ..runner import _dataset_loaders

    rows = []
    for result in dense:
        cfg = make_config("faprune", seed=result.config.seed, **{k: v for k, v in task.inputs().items()
                                                                 if k not in ("model", "train", "valid", "test")})
        train = task.inputs()["train"] if task.tabular is not None else _dataset_loaders(cfg)[0]
        pruned = copy.deepcopy(result.model)
        attach_scores(pruned, cfg.ratio, init="magnitude", scope=cfg.scope, seed=cfg.seed)
        for start_name, start in (("faprune", pruned), ("adv_debias", result.model)):
            logits = torch.cat([b[0] for b in starting_predictions(start, train, torch.device("cpu"),
                                                                    replace_input(cfg, "logit"))])
            row = {"seed": cfg.seed, "start": start_name, "logit_std": float(logits.std()),
                   "prob_std": float(torch.sigmoid(logits).std())}
            for disc_input, rule in VARIANTS:
                game = replace_input(cfg, disc_input, rule)
                torch.manual_seed(cfg.seed)
                disc = FairnessDiscriminator(game.alpha, game.disc_hidden, groups=int(result.metrics.get(
                    "n_groups", len(result.metrics["groups"]))))
                out = warm_up_discriminator(start, disc, torch.optim.Adam(disc.parameters(), lr=game.disc_lr),
                                            train, game, torch.device("cpu"))
                row["reference"] = out["warmup_reference"]
                row[f"{disc_input}/{rule}"] = {"advantage": (out.get("warmup_heldout_adv") or [math.nan])[-1],
                                               "passes": out.get("warmup_passes"), "status": out["warmup_status"],
                                               "trajectory": out.get("warmup_heldout_adv")}
            rows.append(row)
    return rows


def replace_input(cfg: Any, disc_input: str, rule: str | None = None) -> Any:
    """`cfg`'s adversary with another heads' input (and stopping rule)."""
    from dataclasses import replace

    return replace(cfg.adversary, disc_input=disc_input, disc_warmup_rule=rule or cfg.adversary.disc_warmup_rule)


def run_task(task: Task, seeds: Sequence[int] = SEEDS, runs_dir: str = "runs/robustness") -> dict[str, Any]:
    """One task: baselines and FAPrune at the defaults (λ = 1, tune's grid includes it) and tuned, over `seeds`."""
    start = time.perf_counter()
    bases = _baselines(task, seeds, runs_dir)
    tuned = _tuned(task, seeds, runs_dir)
    default = tuned.runs[1.0]  # λ = 1 is on tune's grid: the default runs are those very runs
    row: dict[str, Any] = {"task": task.name, "differs": task.differs, "seeds": list(seeds),
                           "dense_acc": stats.mean_std(r.acc for r in bases["normal"])[0],
                           "dense_deo": stats.mean_std(r.deo for r in bases["normal"])[0],
                           "warmup": _warmup(default), "default": _against_better(default, bases)}
    row["tuned"] = {"lam": tuned.value, "widened": tuned.widened,
                    **(_against_better(tuned.chosen, bases) if tuned.value is not None else {})}
    row["game"] = _against(default, bases["sgdp"])  # the adversary's own effect: SGDP is FAPrune at λ = 0
    row["methods"] = {**{m: _summary(runs) for m, runs in bases.items()}, "faprune": _summary(default),
                      **({"faprune_tuned": _summary(tuned.chosen)} if tuned.value is not None else {})}
    row["frontier"] = tuned.frontier.to_dict(orient="records")
    row["diagnosis"] = diagnose(task, bases["normal"])
    row["seconds"] = time.perf_counter() - start
    return row


def _cell(d: dict[str, Any]) -> str:
    if "ratio" not in d:
        return "no λ admissible"
    return (f"{d['ratio']:.2f}× {d['better'].upper()} [{d['low']:+.3f}, {d['high']:+.3f}] {d['verdict']}; "
            f"acc {d['acc_delta'] * 100:+.1f} pts")


def markdown(rows: list[dict[str, Any]]) -> str:
    """The suite's table as the README shows it."""
    lines = ["| task | differs from tables 2–3 | dense acc / DEO | warm-up advantage (mean, min) / reference, nats; "
             "status | FAPrune DEO vs better baseline, defaults (λ = 1) | tuned (λ chosen on validation, ≤ 3 pts) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        w = r["warmup"]
        status = ", ".join(f"{s}×{w['statuses'].count(s)}" for s in dict.fromkeys(w["statuses"]))
        tuned = f"λ = {r['tuned']['lam']:g}: " + _cell(r["tuned"]) if r["tuned"]["lam"] is not None else "none"
        lines.append(f"| {r['task']} | {r['differs']} | {r['dense_acc']:.3f} / {r['dense_deo']:.3f} | "
                     f"{w['advantage_mean']:.4f}, {w['advantage_min']:.4f} / {w['reference_mean']:.4f}; {status} | "
                     f"{_cell(r['default'])} | {tuned} |")
    return "\n".join(lines)


def methods_markdown(rows: list[dict[str, Any]]) -> str:
    """Every method's test DEO and accuracy per task, the game's own effect, and how well validation sees DEO."""
    names = ("normal", "sgdp", "lmw", "faprune", "faprune_tuned")
    lines = ["| task | " + " | ".join(f"{n} DEO (acc)" for n in names)
             + " | FAPrune − SGDP, DEO (the game's effect) | validation DEO's standard error |",
             "|---|" + "---|" * (len(names) + 2)]
    for r in rows:
        if "methods" not in r:
            continue
        m = r["methods"]
        cells = [_method_cell(m[n]) if n in m else "–" for n in names]
        g = r["game"]
        lines.append(f"| {r['task']} | " + " | ".join(cells)
                     + f" | {g['delta']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}] {g['verdict']} | "
                       f"{m['lmw']['valid_deo_se']:.3f} |")
    return "\n".join(lines)


def _method_cell(m: dict[str, Any]) -> str:
    """DEO ± std (accuracy), and how many of its runs are at chance (`fapkit.fairness.metrics.at_chance`)."""
    chance = f" ⚠ {m['at_chance']} at chance" if m.get("at_chance") else ""
    return f"{m['deo']:.3f} ± {m['deo_std']:.3f} ({m['acc']:.3f}){chance}"


def diagnosis_markdown(rows: list[dict[str, Any]], start: str = "faprune") -> str:
    """The warm-up variants on one starting model per seed: spread of its predictions, reference, outcomes."""
    head = " | ".join(f"{i} / {r}" for i, r in VARIANTS)
    lines = [f"| task | σ(logit) std | logit std | reference (nats) | {head} |",
             "|---|---|---|---|" + "---|" * len(VARIANTS)]
    for r in rows:
        diag = [d for d in r.get("diagnosis", []) if d["start"] == start]
        if not diag:
            continue
        cells = []
        for disc_input, rule in VARIANTS:
            outs = [d[f"{disc_input}/{rule}"] for d in diag]
            counts = {s: sum(o["status"] == s for o in outs) for s in ("informed", "uninformed", "nothing to learn")}
            adv = stats.mean_std(o["advantage"] for o in outs)[0]
            passes = stats.mean_std(o["passes"] for o in outs)[0]
            cells.append(f"{adv:+.4f}, {passes:.0f} passes; {counts['informed']} / {counts['uninformed']} / "
                         f"{counts['nothing to learn']}")
        lines.append(f"| {r['task']} | {stats.mean_std(d['prob_std'] for d in diag)[0]:.3f} | "
                     f"{stats.mean_std(d['logit_std'] for d in diag)[0]:.3f} | "
                     f"{stats.mean_std(d['reference'] for d in diag)[0]:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    """FAPrune's DEO as a share of the better baseline's, defaults and tuned, per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["task"] for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.5))
    for k, (key, label) in enumerate((("default", "defaults (λ = 1)"), ("tuned", "tuned (≤ 3 pts)"))):
        ax.bar([i + 0.4 * k - 0.2 for i in range(len(rows))], [r[key].get("ratio", math.nan) for r in rows],
               width=0.4, label=label)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(0.75, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
    ax.set_ylabel("FAPrune DEO / better of SGDP, LMW")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fapkit.bench.robustness", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=[t.name for t in TASKS], choices=[t.name for t in TASKS])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--runs-dir", default="runs/robustness")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--figures-dir", default="figures")
    parser.add_argument("--report", action="store_true", help="only rewrite the table and figure from the JSON")
    args = parser.parse_args(argv)
    import warnings

    from ..records import load_json, save_json

    out = Path(args.results_dir) / "robustness.json"
    done = {r["task"]: r for r in (load_json(out) if out.exists() else [])}  # a killed suite keeps its tasks
    for task in TASKS:
        if task.name not in args.tasks or args.report:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the flags are in the table
            done[task.name] = run_task(task, args.seeds, args.runs_dir)
        print(task.name, f"{done[task.name]['seconds']:.0f} s", _cell(done[task.name]["default"]), "|",
              _cell(done[task.name]["tuned"]) if "ratio" in done[task.name]["tuned"] else "none", flush=True)
        save_json(out, [done[t.name] for t in TASKS if t.name in done])
    rows = [done[t.name] for t in TASKS if t.name in done]
    (Path(args.results_dir) / "robustness.md").write_text(markdown(rows) + "\n")
    (Path(args.results_dir) / "robustness_methods.md").write_text(methods_markdown(rows) + "\n")
    for start in ("faprune", "adv_debias"):
        (Path(args.results_dir) / f"robustness_diagnosis_{start}.md").write_text(diagnosis_markdown(rows, start) + "\n")
    figure(rows, Path(args.figures_dir) / "robustness.png")
    print(markdown(rows))


if __name__ == "__main__":
    main()
