"""Group-fairness metrics for binary classifiers with a sensitive attribute of k ≥ 2 groups: pure functions of arrays.

Every metric takes fairlearn's argument shape, ``(y_true, y_pred, *, sensitive_features)``
(``sensitive_features`` is ``z`` below); running a model over a loader is `fapkit.training.evaluation`'s job.

Notation: ``y`` is the binary target, ``z`` the sensitive attribute (integer group ids
``0, …, k−1``; ``k = 2`` for a binary attribute) and ``ŷ`` the hard (0/1) prediction. For each
group ``g``:

* selection rate  ``sel_g = P(ŷ=1 | z=g)``
* true-positive rate  ``TPR_g = P(ŷ=1 | y=1, z=g)``
* false-positive rate ``FPR_g = P(ŷ=1 | y=0, z=g)``
* accuracy ``P(ŷ=y | z=g)``

Fairness metrics (see the individual functions):

* DI, disparate impact: ``min_g sel_g / max_g sel_g``. It is at most 1, and
  higher is fairer. It equals fairlearn's ``demographic_parity_ratio``.
* DEO, difference in equalized odds: the TPR gap ``ΔTPR = max_g TPR_g − min_g TPR_g`` and the
  FPR gap ``ΔFPR`` (likewise) combined. Lower is fairer. By default the two gaps are summed,
  ``Σ_{y∈{0,1}} (max_g − min_g) P(ŷ=1 | y, z=g)`` (the paper's Eq. 2 summed over ``y``; for
  ``k = 2`` it is ``|TPR_1 − TPR_0| + |FPR_1 − FPR_0|``).

The number of groups: ``k`` is inferred as ``max(z) + 1``, but at least 2 (so a binary
attribute is always ``{0, 1}``), unless the keyword ``groups=k`` gives it. `group_rates` lists
every id ``0, …, k−1``. A group with no samples (an *absent* group) has ``count`` 0 and ``nan``
rates there, and DI and DEO are taken over the groups present; with an inferred ``k`` this is
silent, with an explicit ``groups=`` each function issues a ``RuntimeWarning`` naming the absent
groups. DI and DEO need at least two groups present.

Inputs may be Python lists, numpy arrays or torch tensors (any device) that
hold 0/1 ints or floats, or booleans (``z``: non-negative integer group ids, as ints,
integer-valued floats or booleans). They must be 1-D; an ``[N, 1]`` array is flattened.

Error policy: any bad input raises ``ValueError`` with a message that names the
argument and the problem. Bad inputs are:

* an argument that is empty, is not 1-D (or ``[N, 1]``), or holds values other
  than 0/1 (``z``: other than a non-negative integer, below ``groups`` when given; the message
  lists up to 5 of the distinct offending values);
* arguments of different lengths (the message gives both lengths);
* a ``groups=`` that is not an integer ≥ 2;
* fewer than two groups present, when DI or DEO needs them;
* a ``(y, z)`` cell with no samples, when DEO needs the TPR or FPR of that
  cell's group (for example "no samples with y=1, z=0: TPR of group 0 is
  undefined").

Where a rate is merely descriptive, as in `group_rates`, an undefined
rate is reported as ``nan`` and nothing is raised. The one metric that returns
``nan`` is DI when nobody in either group is selected; see
`disparate_impact`.

fairlearn is more lenient than this module. With one group, its
``demographic_parity_ratio`` returns 1.0 and its ``equalized_odds_difference``
returns 0.0. It also counts a TPR or FPR with no samples as 0.0. In all of
these cases this module raises instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Literal, Union

import numpy as np
import torch

ArrayLike = Union[Sequence[Any], np.ndarray, torch.Tensor]
DEOKind = Literal["sum", "max", "mean", "tpr"]

__all__ = [
    "group_rates",
    "disparate_impact",
    "equalized_odds",
    "fairness_report",
    "binary_array",
    "group_ids",
    "degenerate_groups",
    "near_constant_groups",
    "accuracy_change",
    "is_degenerate",
    "is_near_constant",
    "DEGENERATE_TOLERANCE",
    "NEAR_CONSTANT_TOLERANCE",
]

#: A group whose selection rate is within this distance of 0 or 1 is (nearly) given one constant
#: prediction; such a model reaches DI ≈ 1 or DEO ≈ 0 trivially (see :func:`is_degenerate`).
DEGENERATE_TOLERANCE = 0.01
#: The second, wider level: a selection rate within 0.05 of 0 or 1 in some group (but not within
#: `DEGENERATE_TOLERANCE`) marks a *near-constant* model, e.g. rates 0.98 and 0.80, whose DI/DEO
#: are largely bought by predicting one class (see `is_near_constant`).
NEAR_CONSTANT_TOLERANCE = 0.05


def _one_dimensional(a: ArrayLike, name: str) -> np.ndarray:
    """``a`` (array, list or tensor of any device and dtype) as a non-empty 1-D numpy array, or a ValueError."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype == torch.bfloat16:  # numpy has no bfloat16
            a = a.to(torch.float32)
        a = a.numpy()
    arr = np.asarray(a)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (or of shape [N, 1]); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; at least one sample is needed")
    return arr


def binary_array(a: ArrayLike, name: str) -> np.ndarray:
    """Return ``a`` as a 1-D int64 numpy array of 0/1; raise ``ValueError`` otherwise."""
    arr = _one_dimensional(a, name)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.dtype.kind in "iuf":
        # nan is caught here too; str() of a numpy scalar prints float32 0.7 as "0.7"
        bad = [str(v) for v in arr[(arr != 0) & (arr != 1)]]
    else:  # object, string, complex...: check element by element
        bad = [
            repr(v)
            for v in arr.tolist()
            if not (isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1))
        ]
    if bad:
        distinct = list(dict.fromkeys(bad))  # in order of appearance
        shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        raise ValueError(
            f"{name} must hold only 0/1 values (or booleans); found {len(distinct)} "
            f"other distinct value(s): {shown}"
        )
    return arr.astype(np.int64)


def _check_same_length(**arrays: np.ndarray) -> None:
    (n1, a1), *rest = arrays.items()
    for n2, a2 in rest:
        if len(a2) != len(a1):
            raise ValueError(
                f"{n1} and {n2} have different lengths: len({n1})={len(a1)}, len({n2})={len(a2)}"
            )


def _rate(num: int, den: int) -> float:
    return num / den if den else math.nan


def _check_groups(groups: int | None) -> None:
    if groups is not None and (isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 2):
        raise ValueError(f"groups must be an integer ≥ 2 (the number of sensitive groups); got {groups!r}")


def group_ids(a: ArrayLike, name: str = "z", *, groups: int | None = None) -> np.ndarray:
    """Return ``a`` as a 1-D int64 numpy array of sensitive group ids; raise ``ValueError`` otherwise.

    Ids are non-negative integers (ints, integer-valued floats or booleans), and below ``groups``
    when it is given. With ``groups=2`` this is `binary_array`, messages included.
    """
    _check_groups(groups)
    if groups == 2:
        return binary_array(a, name)
    arr = _one_dimensional(a, name)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    limit = math.inf if groups is None else groups
    if arr.dtype.kind in "iuf":
        with np.errstate(invalid="ignore"):  # nan and inf are offenders
            ok = np.isfinite(arr) & (arr >= 0) & (arr < limit) & (np.floor(arr) == arr)
        bad = [str(v) for v in arr[~ok]]
    else:  # object, string, complex...: check element by element
        bad = [
            repr(v)
            for v in arr.tolist()
            if not (isinstance(v, (int, float, np.integer, np.floating))
                    and math.isfinite(v) and 0 <= v < limit and int(v) == v)
        ]
    if bad:
        distinct = list(dict.fromkeys(bad))  # in order of appearance
        shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        what = ("only 0/1 or other non-negative integer group ids (or booleans)" if groups is None
                else f"only integer group ids 0..{groups - 1} (groups={groups})")
        raise ValueError(f"{name} must hold {what}; found {len(distinct)} other distinct value(s): {shown}")
    return arr.astype(np.int64)


def _n_groups(zz: np.ndarray, groups: int | None) -> int:
    return int(groups) if groups is not None else max(int(zz.max()) + 1, 2)


def _validated(y_true: ArrayLike | None, y_pred: ArrayLike, z: ArrayLike,
               groups: int | None) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, int]:
    """(y_true, y_pred, z, k) checked: 0/1 targets and predictions, group ids, equal lengths."""
    yt = None if y_true is None else binary_array(y_true, "y_true")
    yp = binary_array(y_pred, "y_pred")
    zz = group_ids(z, "z", groups=groups)
    if yt is None:
        _check_same_length(y_pred=yp, z=zz)
    else:
        _check_same_length(y_true=yt, y_pred=yp, z=zz)
    return yt, yp, zz, _n_groups(zz, groups)


def _warn_absent(count: np.ndarray, groups: int | None, stacklevel: int) -> None:
    """With an explicit ``groups=``, a RuntimeWarning naming the groups without samples."""
    absent = [g for g in range(len(count)) if count[g] == 0]
    if groups is not None and absent:
        warnings.warn(
            f"z has no samples of group(s) {absent} of groups={groups}: their rates are nan, and DI and "
            f"DEO are taken over the {len(count) - len(absent)} group(s) present",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )


def _too_few_groups(present: list[int], k: int, metric: str) -> ValueError:
    if k == 2:
        return ValueError(f"z has only group {present[0]}; {metric} needs both groups 0 and 1")
    return ValueError(f"z has only group {present[0]}; {metric} needs at least two of the groups 0..{k - 1}")


def _group_rates(yt: np.ndarray, yp: np.ndarray, zz: np.ndarray, k: int) -> dict[int, dict[str, float]]:
    pos, sel = yt == 1, yp == 1

    def per_group(mask: np.ndarray) -> list[int]:
        return np.bincount(zz[mask], minlength=k).tolist()

    count = np.bincount(zz, minlength=k).tolist()
    n_pos, n_neg = per_group(pos), per_group(~pos)
    n_sel, tp, fp, correct = per_group(sel), per_group(pos & sel), per_group(~pos & sel), per_group(yp == yt)
    return {
        g: {
            "count": count[g],
            "selection_rate": _rate(n_sel[g], count[g]),
            "tpr": _rate(tp[g], n_pos[g]),
            "fpr": _rate(fp[g], n_neg[g]),
            "accuracy": _rate(correct[g], count[g]),
            "n_pos": n_pos[g],
            "n_neg": n_neg[g],
        }
        for g in range(k)
    }


def _disparate_impact(yp: np.ndarray, zz: np.ndarray, k: int, stacklevel: int) -> float:
    count = np.bincount(zz, minlength=k)
    present = [g for g in range(k) if count[g]]
    if len(present) < 2:
        raise _too_few_groups(present, k, "DI")
    n_sel = np.bincount(zz[yp == 1], minlength=k)
    sel = [int(n_sel[g]) / int(count[g]) for g in present]
    hi, lo = max(sel), min(sel)
    if hi == 0:
        warnings.warn(
            f"disparate_impact: no sample in {'either' if k == 2 else 'any'} group is predicted positive "
            "(max selection rate is 0); DI = 0/0 is undefined, returning nan",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )
        return math.nan
    return float(lo / hi)


def _equalized_odds(rates: dict[int, dict[str, float]], kind: str) -> float:
    k = len(rates)
    present = [g for g in range(k) if rates[g]["count"]]
    if len(present) < 2:
        raise _too_few_groups(present, k, "equalized odds")
    cells = [(1, "n_pos", "TPR")] + ([] if kind == "tpr" else [(0, "n_neg", "FPR")])
    for y, key, rate_name in cells:
        for g in present:
            if rates[g][key] == 0:
                raise ValueError(
                    f"no samples with y={y}, z={g}: {rate_name} of group {g} is undefined"
                )

    def gap(key: str) -> float:  # max - min is exactly |a - b| for two groups
        values = [rates[g][key] for g in present]
        return max(values) - min(values)

    d_tpr = gap("tpr")
    if kind == "tpr":
        return float(d_tpr)
    d_fpr = gap("fpr")
    if kind == "sum":
        return float(d_tpr + d_fpr)
    if kind == "max":
        return float(max(d_tpr, d_fpr))
    return float((d_tpr + d_fpr) / 2)


def group_rates(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike,
                groups: int | None = None) -> dict[int, dict[str, float]]:
    """Rates of each sensitive group ``g`` in ``0, …, k−1`` (``(0, 1)`` for a binary attribute).

    ``k`` is ``groups`` when given, else ``max(z) + 1`` but at least 2. Returns ``{g: stats}`` for
    every ``g < k``, in order, where ``stats`` has these keys:

    * ``count``: number of samples with ``z=g`` (int)
    * ``n_pos`` / ``n_neg``: samples with ``z=g`` and ``y=1`` / ``y=0`` (int)
    * ``selection_rate``: ``P(ŷ=1 | z=g)``
    * ``tpr``: ``P(ŷ=1 | y=1, z=g)``
    * ``fpr``: ``P(ŷ=1 | y=0, z=g)``
    * ``accuracy``: ``P(ŷ=y | z=g)``

    A rate whose conditioning set is empty is ``nan``; an absent group (``count`` 0) has only
    ``nan`` rates. Nothing is raised for it here (with an explicit ``groups=``, an absent group
    issues a ``RuntimeWarning``); `disparate_impact` and `equalized_odds` raise when
    they need such a rate. Bad inputs raise ``ValueError``, as the module
    docstring describes.
    """
    yt, yp, zz, k = _validated(y_true, y_pred, sensitive_features, groups)
    rates = _group_rates(yt, yp, zz, k)
    _warn_absent(np.array([r["count"] for r in rates.values()]), groups, stacklevel=2)
    return rates


def _absent(stats: dict[str, Any]) -> bool:
    return "count" in stats and int(stats["count"]) == 0


def degenerate_groups(groups: dict[Any, dict[str, Any]], *, tolerance: float = DEGENERATE_TOLERANCE) -> list[int]:
    """The groups (int ids, in order) whose selection rate is within ``tolerance`` of 0 or 1, or ``nan``.

    ``groups`` is `group_rates`' output (int or str keys). A group recorded with ``count`` 0 is
    absent from the data, not a constant prediction, and is never listed; for ``k = 2``
    `group_rates` of data that `fairness_report` accepts has no absent group.
    """
    out = []
    for g, stats in groups.items():
        if _absent(stats):
            continue
        rate = float(stats["selection_rate"])
        if math.isnan(rate) or rate <= tolerance or rate >= 1.0 - tolerance:
            out.append(int(g))
    return sorted(out)


def near_constant_groups(groups: dict[Any, dict[str, Any]]) -> list[int]:
    """The groups whose selection rate is within `NEAR_CONSTANT_TOLERANCE` of 0 or 1 but not within
    `DEGENERATE_TOLERANCE` (`degenerate_groups` at the wider level less those at the narrower one)."""
    narrow = set(degenerate_groups(groups))
    return [g for g in degenerate_groups(groups, tolerance=NEAR_CONSTANT_TOLERANCE) if g not in narrow]


def is_degenerate(groups: dict[Any, dict[str, Any]], *, tolerance: float = DEGENERATE_TOLERANCE) -> bool:
    """Whether a model is (nearly) a constant predictor inside some sensitive group.

    ``groups`` is `group_rates`' output (int or str keys, as a JSON record stores them), for any
    number of groups. A model that selects (almost) everyone or (almost) nobody in a group has a
    selection rate within ``tolerance`` of 0 or 1 there. In every group it is trivially "fair"
    (DI = 1, DEO = 0) without having learnt anything; in one group it has replaced the classifier
    by a rule on z. Tables and the slider explorer mark such models rather than present them as
    fair. An undefined (``nan``) rate counts as degenerate; an absent group (``count`` 0) is
    ignored. `degenerate_groups` names the groups.
    """
    return bool(degenerate_groups(groups, tolerance=tolerance))


def is_near_constant(groups: dict[Any, dict[str, Any]]) -> bool:
    """Whether a model is *near-constant*: some group's selection rate is within `NEAR_CONSTANT_TOLERANCE`
    of 0 or 1, but the model is not degenerate (`is_degenerate`); the two levels never both hold.
    `near_constant_groups` names the groups (it may name some of a degenerate model's too)."""
    return is_degenerate(groups, tolerance=NEAR_CONSTANT_TOLERANCE) and not is_degenerate(groups)


def disparate_impact(y_true: ArrayLike | None, y_pred: ArrayLike, *, sensitive_features: ArrayLike,
                     groups: int | None = None) -> float:
    """Disparate impact: ``DI = min_g sel_g / max_g sel_g``, with ``sel_g = P(ŷ=1 | z=g)``.

    DI lies in ``[0, 1]`` and higher is fairer; 1 means equal selection rates.
    It equals ``fairlearn.metrics.demographic_parity_ratio``, which does not use
    ``y_true``, for any number of groups.

    The min and max run over the groups present in ``z``: an absent group is ignored (with an
    explicit ``groups=``, after a ``RuntimeWarning`` naming it; fairlearn does not know of it).

    Edge case: if nobody in any group is selected (``max_g sel_g = 0``), DI
    is 0/0. fairlearn 0.15 returns ``nan`` here without a warning. This
    function also returns ``nan``, and it issues a ``RuntimeWarning``.

    ``y_true`` is not used (pass None); it is there for fairlearn's argument shape, and checked
    like the others when given.

    Raises ``ValueError`` for bad inputs, including a ``z`` with only one group present
    (fairlearn would return 1.0 there).
    """
    _, yp, zz, k = _validated(y_true, y_pred, sensitive_features, groups)
    _warn_absent(np.bincount(zz, minlength=k), groups, stacklevel=2)
    return _disparate_impact(yp, zz, k, stacklevel=2)


def equalized_odds(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike, kind: DEOKind = "sum",
    groups: int | None = None,
) -> float:
    """Difference in equalized odds (DEO); lower is fairer, and 0 means equalized odds.

    With ``ΔTPR = max_g TPR_g − min_g TPR_g`` and ``ΔFPR = max_g FPR_g − min_g FPR_g`` over the
    groups present (for two groups ``|TPR_1 - TPR_0|`` and ``|FPR_1 - FPR_0|``, exactly):

    * ``kind="sum"`` (default): ``ΔTPR + ΔFPR``, i.e.
      ``Σ_{y∈{0,1}} (max_g − min_g) P(ŷ=1 | y, z=g)``, the paper's Eq. 2 summed over
      ``y``. Range ``[0, 2]``.
    * ``kind="max"``: ``max(ΔTPR, ΔFPR)``. This equals
      ``fairlearn.metrics.equalized_odds_difference`` when every cell has
      samples.
    * ``kind="mean"``: ``(ΔTPR + ΔFPR) / 2``. This equals fairlearn's
      ``equalized_odds_difference(..., agg="mean")``.
    * ``kind="tpr"``: ``ΔTPR`` alone (the equal-opportunity gap).

    An absent group is ignored (with an explicit ``groups=``, after a ``RuntimeWarning``).
    Raises ``ValueError`` for bad inputs. It also raises when ``z`` has only
    one group present, or when a ``(y, z)`` cell of a present group that the chosen kind needs
    has no samples. ``kind="tpr"`` needs only the ``y=1`` cells; the other kinds need
    all ``2k``. fairlearn instead counts an undefined rate as 0.
    """
    if kind not in ("sum", "max", "mean", "tpr"):
        raise ValueError(f"kind must be one of 'sum', 'max', 'mean', 'tpr'; got {kind!r}")
    yt, yp, zz, k = _validated(y_true, y_pred, sensitive_features, groups)
    rates = _group_rates(yt, yp, zz, k)
    _warn_absent(np.array([r["count"] for r in rates.values()]), groups, stacklevel=2)
    return _equalized_odds(rates, kind)


def fairness_report(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike,
                    groups: int | None = None, undefined: Literal["raise", "nan"] = "raise") -> dict[str, Any]:
    """Accuracy and fairness metrics in one JSON-serialisable dict of plain Python values.

    ``groups`` is the number of sensitive groups ``k`` (inferred when None; see the module
    docstring); an absent group under an explicit ``groups=`` is warned about once.

    Keys:

    * ``n``: number of samples
    * ``acc``: overall accuracy ``P(ŷ=y)``
    * ``selection_rate``: overall ``P(ŷ=1)``
    * ``di``: `disparate_impact` (``nan`` with a ``RuntimeWarning`` if
      nobody is selected)
    * ``deo``: `equalized_odds` with ``kind="sum"``
    * ``deo_max``, ``deo_mean``, ``deo_tpr``: the other DEO kinds
    * ``groups``: `group_rates`, one entry per group ``0, …, k−1``
    * ``degenerate``: `is_degenerate` of the groups (a constant predictor in some group)
    * ``near_constant``: `is_near_constant` of the groups (the wider second level)

    Raises ``ValueError`` under the same conditions as `equalized_odds`
    with its default kind: a one-group ``z`` or an empty ``(y, z)`` cell. With
    ``undefined="nan"`` (what the kit's evaluation of a trained model uses) such a metric is
    ``nan`` instead, the others are kept, and ``undefined`` maps each such metric to the reason
    (e.g. ``{"deo": "no samples with y=1, z=1: TPR of group 1 is undefined"}``); bad inputs still raise.
    """
    if undefined not in ("raise", "nan"):
        raise ValueError(f"undefined must be 'raise' or 'nan', got {undefined!r}")
    yt, yp, zz, k = _validated(y_true, y_pred, sensitive_features, groups)
    rates = _group_rates(yt, yp, zz, k)
    _warn_absent(np.array([r["count"] for r in rates.values()]), groups, stacklevel=2)
    reasons: dict[str, str] = {}

    def defined(name: str, compute: Callable[[], float]) -> float:
        try:
            return compute()
        except ValueError as err:  # too few groups, or an empty (y, z) cell: the metric has no value here
            if undefined == "raise":
                raise
            reasons[name] = str(err)
            return math.nan

    deo = {kind: defined("deo" if kind == "sum" else f"deo_{kind}", lambda kind=kind: _equalized_odds(rates, kind))
           for kind in ("sum", "max", "mean", "tpr")}
    di = defined("di", lambda: _disparate_impact(yp, zz, k, stacklevel=4))
    report = {
        "n": int(len(yt)),
        "acc": float((yt == yp).mean()),
        "selection_rate": float(yp.mean()),
        "di": di,
        "deo": deo["sum"],
        "deo_max": deo["max"],
        "deo_mean": deo["mean"],
        "deo_tpr": deo["tpr"],
        "groups": rates,
        "degenerate": is_degenerate(rates),
        "near_constant": is_near_constant(rates),
    }
    if reasons:
        report["undefined"] = reasons
    return report


def majority_rate(groups: dict[Any, dict[str, Any]]) -> tuple[float, int]:
    """The accuracy of always predicting the commoner label, and the number of samples, from `group_rates`."""
    n_pos = sum(int(g["n_pos"]) for g in groups.values())
    n = n_pos + sum(int(g["n_neg"]) for g in groups.values())
    return (max(n_pos, n - n_pos) / n if n else math.nan), n


def at_chance(acc: float, groups: dict[Any, dict[str, Any]], z_score: float = 2.0) -> bool:
    """Whether accuracy `acc` is not above the majority-class rate by `z_score` binomial standard errors.

    Such a model has not learnt the target (an untrained network, or a stage stopped too early); its DI
    and DEO describe a near-chance predictor, not the method. ``groups``: `group_rates` of the same samples.
    """
    majority, n = majority_rate(groups)
    if not n or math.isnan(acc):
        return False
    return acc <= majority + z_score * math.sqrt(majority * (1 - majority) / n)


def accuracy_change(groups: dict[Any, dict[str, Any]], dense_groups: dict[Any, dict[str, Any]], acc: float,
                    dense_acc: float) -> dict[str, Any]:
    """How pruning changed each group's accuracy against the dense model it started from.

    ``groups`` / ``dense_groups`` are `group_rates` of the pruned and the dense model on the same
    samples (int or str keys), for any number of groups. Returns

    * ``group_acc_change``: ``{g: A_sparse,g − A_dense,g}`` (negative: the group lost accuracy);
      ``nan`` for an absent group (``nan`` accuracy, as `group_rates` gives a group with no samples);
    * ``acc_change_std``: the population standard deviation of those changes over the groups
      present, FairGRAPE's disparity measure (0: every group lost alike);
    * ``max_excess_gap``: ``max_g ψ_g`` over the groups present, with
      ``ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse)``,
      the largest excess accuracy loss of a group over the model's, CEAG's constraint (≤ ε when met).

    Raises ``ValueError`` when the two list different groups, or no group has an accuracy.
    """
    pruned, dense = ({int(g): stats for g, stats in rates.items()} for rates in (groups, dense_groups))
    if sorted(pruned) != sorted(dense):
        raise ValueError(f"the pruned and the dense model were evaluated on different groups: "
                         f"{sorted(pruned)} vs {sorted(dense)}")
    change = {g: float(pruned[g]["accuracy"]) - float(dense[g]["accuracy"]) for g in sorted(pruned)}
    values = np.array([v for v in change.values() if not math.isnan(v)])
    if values.size == 0:
        raise ValueError("no group has an accuracy in both models (every group is absent)")
    overall = float(acc) - float(dense_acc)
    return {"group_acc_change": change, "acc_change_std": float(values.std()),
            "max_excess_gap": float((overall - values).max())}
