"""Group-fairness metrics for binary classifiers with a binary sensitive attribute: pure functions of arrays.

Every metric takes fairlearn's argument shape, ``(y_true, y_pred, *, sensitive_features)``
(``sensitive_features`` is ``z`` below); running a model over a loader is `fapkit.evaluation`'s job.

Notation: ``y`` is the binary target, ``z`` the binary sensitive attribute and
``ŷ`` the hard (0/1) prediction. For each group ``g`` in ``{0, 1}``:

* selection rate  ``sel_g = P(ŷ=1 | z=g)``
* true-positive rate  ``TPR_g = P(ŷ=1 | y=1, z=g)``
* false-positive rate ``FPR_g = P(ŷ=1 | y=0, z=g)``
* accuracy ``P(ŷ=y | z=g)``

Fairness metrics (see the individual functions):

* DI, disparate impact: ``min_g sel_g / max_g sel_g``. It is at most 1, and
  higher is fairer. It equals fairlearn's ``demographic_parity_ratio``.
* DEO, difference in equalized odds: the TPR gap and the FPR gap combined.
  Lower is fairer. By default the two gaps are summed (the paper's Eq. 2 summed
  over ``y``).

Inputs may be Python lists, numpy arrays or torch tensors (any device) that
hold 0/1 ints or floats, or booleans. They must be 1-D; an ``[N, 1]`` array is
flattened.

Error policy: any bad input raises ``ValueError`` with a message that names the
argument and the problem. Bad inputs are:

* an argument that is empty, is not 1-D (or ``[N, 1]``), or holds values other
  than 0/1 (the message lists up to 5 of the distinct offending values);
* arguments of different lengths (the message gives both lengths);
* a sensitive group with no samples, when DI or DEO needs both groups;
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
from typing import Any, Literal, Union

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


def binary_array(a: ArrayLike, name: str) -> np.ndarray:
    """Return ``a`` as a 1-D int64 numpy array of 0/1; raise ``ValueError`` otherwise."""
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


def group_rates(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike) -> dict[int, dict[str, float]]:
    """Rates of each sensitive group ``g`` in ``(0, 1)``.

    Returns ``{g: stats}``, where ``stats`` has these keys:

    * ``count``: number of samples with ``z=g`` (int)
    * ``n_pos`` / ``n_neg``: samples with ``z=g`` and ``y=1`` / ``y=0`` (int)
    * ``selection_rate``: ``P(ŷ=1 | z=g)``
    * ``tpr``: ``P(ŷ=1 | y=1, z=g)``
    * ``fpr``: ``P(ŷ=1 | y=0, z=g)``
    * ``accuracy``: ``P(ŷ=y | z=g)``

    A rate whose conditioning set is empty is ``nan``. Nothing is raised for
    it here; `disparate_impact` and `equalized_odds` raise when
    they need such a rate. Bad inputs raise ``ValueError``, as the module
    docstring describes.
    """
    yt = binary_array(y_true, "y_true")
    yp = binary_array(y_pred, "y_pred")
    zz = binary_array(sensitive_features, "z")
    _check_same_length(y_true=yt, y_pred=yp, z=zz)
    out: dict[int, dict[str, float]] = {}
    for g in (0, 1):
        m = zz == g
        pos, neg = m & (yt == 1), m & (yt == 0)
        count, n_pos, n_neg = int(m.sum()), int(pos.sum()), int(neg.sum())
        out[g] = {
            "count": count,
            "selection_rate": _rate(int(yp[m].sum()), count),
            "tpr": _rate(int(yp[pos].sum()), n_pos),
            "fpr": _rate(int(yp[neg].sum()), n_neg),
            "accuracy": _rate(int((yp[m] == yt[m]).sum()), count),
            "n_pos": n_pos,
            "n_neg": n_neg,
        }
    return out


def is_degenerate(groups: dict[Any, dict[str, Any]], *, tolerance: float = DEGENERATE_TOLERANCE) -> bool:
    """Whether a model is (nearly) a constant predictor inside some sensitive group.

    ``groups`` is `group_rates`' output (int or str keys, as a JSON record stores them). A
    model that selects (almost) everyone or (almost) nobody in a group has a selection rate within
    ``tolerance`` of 0 or 1 there. In both groups it is trivially "fair" (DI = 1, DEO = 0) without
    having learnt anything; in one group it has replaced the classifier by a rule on z. Tables
    and the slider explorer mark such models rather than present them as fair. An undefined
    (``nan``) rate counts as degenerate.
    """
    for stats in groups.values():
        rate = float(stats["selection_rate"])
        if math.isnan(rate) or rate <= tolerance or rate >= 1.0 - tolerance:
            return True
    return False


def is_near_constant(groups: dict[Any, dict[str, Any]]) -> bool:
    """Whether a model is *near-constant*: some group's selection rate is within `NEAR_CONSTANT_TOLERANCE`
    of 0 or 1, but the model is not degenerate (`is_degenerate`); the two levels never both hold."""
    return is_degenerate(groups, tolerance=NEAR_CONSTANT_TOLERANCE) and not is_degenerate(groups)


def disparate_impact(y_true: ArrayLike | None, y_pred: ArrayLike, *, sensitive_features: ArrayLike) -> float:
    """Disparate impact: ``DI = min_g sel_g / max_g sel_g``, with ``sel_g = P(ŷ=1 | z=g)``.

    DI lies in ``[0, 1]`` and higher is fairer; 1 means equal selection rates.
    It equals ``fairlearn.metrics.demographic_parity_ratio``, which does not use
    ``y_true``.

    Edge case: if nobody in either group is selected (``max_g sel_g = 0``), DI
    is 0/0. fairlearn 0.15 returns ``nan`` here without a warning. This
    function also returns ``nan``, and it issues a ``RuntimeWarning``.

    ``y_true`` is not used (pass None); it is there for fairlearn's argument shape, and checked
    like the others when given.

    Raises ``ValueError`` for bad inputs, including a ``z`` with only one group
    (fairlearn would return 1.0 there).
    """
    yp = binary_array(y_pred, "y_pred")
    zz = binary_array(sensitive_features, "z")
    _check_same_length(y_pred=yp, z=zz)
    if y_true is not None:
        _check_same_length(y_pred=yp, y_true=binary_array(y_true, "y_true"))
    present = np.unique(zz).tolist()
    if len(present) < 2:
        raise ValueError(f"z has only group {present[0]}; DI needs both groups 0 and 1")
    sel = [yp[zz == g].mean() for g in (0, 1)]
    hi, lo = max(sel), min(sel)
    if hi == 0:
        warnings.warn(
            "disparate_impact: no sample in either group is predicted positive "
            "(max selection rate is 0); DI = 0/0 is undefined, returning nan",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.nan
    return float(lo / hi)


def equalized_odds(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike, kind: DEOKind = "sum"
) -> float:
    """Difference in equalized odds (DEO); lower is fairer, and 0 means equalized odds.

    With ``ΔTPR = |TPR_1 - TPR_0|`` and ``ΔFPR = |FPR_1 - FPR_0|``:

    * ``kind="sum"`` (default): ``ΔTPR + ΔFPR``, the paper's Eq. 2 summed over
      ``y``. Range ``[0, 2]``.
    * ``kind="max"``: ``max(ΔTPR, ΔFPR)``. This equals
      ``fairlearn.metrics.equalized_odds_difference`` when every cell has
      samples.
    * ``kind="mean"``: ``(ΔTPR + ΔFPR) / 2``. This equals fairlearn's
      ``equalized_odds_difference(..., agg="mean")``.
    * ``kind="tpr"``: ``ΔTPR`` alone (the equal-opportunity gap).

    Raises ``ValueError`` for bad inputs. It also raises when ``z`` has only
    one group, or when a ``(y, z)`` cell that the chosen kind needs has no
    samples. ``kind="tpr"`` needs only the ``y=1`` cells; the other kinds need
    all four. fairlearn instead counts an undefined rate as 0.
    """
    if kind not in ("sum", "max", "mean", "tpr"):
        raise ValueError(f"kind must be one of 'sum', 'max', 'mean', 'tpr'; got {kind!r}")
    rates = group_rates(y_true, y_pred, sensitive_features=sensitive_features)
    for g in (0, 1):
        if rates[g]["count"] == 0:
            raise ValueError(
                f"z has only group {1 - g}; equalized odds needs both groups 0 and 1"
            )
    cells = [(1, "n_pos", "TPR")] + ([] if kind == "tpr" else [(0, "n_neg", "FPR")])
    for y, key, rate_name in cells:
        for g in (0, 1):
            if rates[g][key] == 0:
                raise ValueError(
                    f"no samples with y={y}, z={g}: {rate_name} of group {g} is undefined"
                )
    d_tpr = abs(rates[1]["tpr"] - rates[0]["tpr"])
    if kind == "tpr":
        return float(d_tpr)
    d_fpr = abs(rates[1]["fpr"] - rates[0]["fpr"])
    if kind == "sum":
        return float(d_tpr + d_fpr)
    if kind == "max":
        return float(max(d_tpr, d_fpr))
    return float((d_tpr + d_fpr) / 2)


def fairness_report(y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: ArrayLike) -> dict[str, Any]:
    """Accuracy and fairness metrics in one JSON-serialisable dict of plain Python values.

    Keys:

    * ``n``: number of samples
    * ``acc``: overall accuracy ``P(ŷ=y)``
    * ``selection_rate``: overall ``P(ŷ=1)``
    * ``di``: `disparate_impact` (``nan`` with a ``RuntimeWarning`` if
      nobody is selected)
    * ``deo``: `equalized_odds` with ``kind="sum"``
    * ``deo_max``, ``deo_mean``, ``deo_tpr``: the other DEO kinds
    * ``groups``: `group_rates`
    * ``degenerate``: `is_degenerate` of the groups (a constant predictor in some group)
    * ``near_constant``: `is_near_constant` of the groups (the wider second level)

    Raises ``ValueError`` under the same conditions as `equalized_odds`
    with its default kind. A one-group ``z`` or an empty ``(y, z)`` cell
    therefore raises.
    """
    yt = binary_array(y_true, "y_true")
    yp = binary_array(y_pred, "y_pred")
    zz = binary_array(sensitive_features, "z")
    _check_same_length(y_true=yt, y_pred=yp, z=zz)
    groups = group_rates(yt, yp, sensitive_features=zz)
    deo = {k: equalized_odds(yt, yp, sensitive_features=zz, kind=k) for k in ("sum", "max", "mean", "tpr")}
    return {
        "n": int(len(yt)),
        "acc": float((yt == yp).mean()),
        "selection_rate": float(yp.mean()),
        "di": disparate_impact(None, yp, sensitive_features=zz),
        "deo": deo["sum"],
        "deo_max": deo["max"],
        "deo_mean": deo["mean"],
        "deo_tpr": deo["tpr"],
        "groups": groups,
        "degenerate": is_degenerate(groups),
        "near_constant": is_near_constant(groups),
    }


def accuracy_change(groups: dict[Any, dict[str, Any]], dense_groups: dict[Any, dict[str, Any]], acc: float,
                    dense_acc: float) -> dict[str, Any]:
    """How pruning changed each group's accuracy against the dense model it started from.

    ``groups`` / ``dense_groups`` are `group_rates` of the pruned and the dense model on the same
    samples (int or str keys). Returns

    * ``group_acc_change``: ``{g: A_sparse,g − A_dense,g}`` (negative: the group lost accuracy);
    * ``acc_change_std``: the population standard deviation of those changes over the groups,
      FairGRAPE's disparity measure (0: every group lost alike);
    * ``max_excess_gap``: ``max_g ψ_g`` with ``ψ_g = (A_dense,g − A_sparse,g) − (A_dense − A_sparse)``,
      the largest excess accuracy loss of a group over the model's, CEAG's constraint (≤ ε when met).
    """
    pruned, dense = ({int(g): stats for g, stats in rates.items()} for rates in (groups, dense_groups))
    if sorted(pruned) != sorted(dense):
        raise ValueError(f"the pruned and the dense model were evaluated on different groups: "
                         f"{sorted(pruned)} vs {sorted(dense)}")
    change = {g: float(pruned[g]["accuracy"]) - float(dense[g]["accuracy"]) for g in sorted(pruned)}
    values = np.array(list(change.values()))
    overall = float(acc) - float(dense_acc)
    return {"group_acc_change": change, "acc_change_std": float(values.std()),
            "max_excess_gap": float((overall - values).max())}
