"""A run's deployable files: `save` writes them into a folder, `decode_sparse` reads the sparse one back.

``RunResult.save(folder)``, ``python -m fapkit run ... --save FOLDER`` and ``python -m fapkit export
RUN_DIR FOLDER`` all end here. No file holds a pickled module; each is written atomically
(`fapkit.records`), the manifest last, so a folder with a manifest is a complete export.

* ``model.safetensors``: the model's ``state_dict`` (dense, pruned weights exactly 0) under the
  architecture's own keys, BatchNorm's ``num_batches_tracked`` included, so that
  ``torchvision.models.resnet18(num_classes=1).load_state_dict(load_file(path), strict=True)`` loads it
  (or the same keys into a module of the user's own).
* ``masks.safetensors``: one bool tensor per pruned layer, ``<layer>.weight_mask`` (True = kept), as
  ``torch.nn.utils.prune.custom_from_mask(module, "weight", mask)`` takes it to resume training.
  A `RunResult` keeps the zeroed model and one record per masked layer, not the mask tensors, so
  the mask is ``weight != 0`` on the layers the records list; the manifest says where a layer's
  count differs from its record (a kept weight that is exactly 0).
* ``weights.sparse.safetensors``: the same state dict, each pruned weight as a bitmask and its kept
  values (layout below); float32, or float16 with ``float16=True``.
* ``model.onnx`` (``onnx=True``, the ``onnx`` extra): exported with ``torch.onnx.export`` (batch axis
  dynamic) and, when onnxruntime is installed, its logits checked against torch on a batch.
* a channel-pruned run (``structure="channel"``): ``model.safetensors`` holds the *narrowed* model (pruned
  channels removed, `fapkit.surgery.shrink`), loadable with ``strict=True`` into
  ``fapkit.surgery.rebuild(arch, state_dict)`` (the plain architecture, each Conv2d/BatchNorm/Linear narrowed to
  the saved shapes); no masks or sparse file (it has no zeros); the manifest's ``channels`` lists each layer's
  kept output channels and the parameter and MAC counts of the dense and the narrowed model.
* ``manifest.json``: architecture and constructor arguments, input, versions, method and settings,
  per-layer and total sparsity, the run's test and validation metrics, the metrics re-measured on each
  weights file, the file sizes and each file's SHA-256.

Sparse layout (safetensors metadata ``{"format": "fapkit-sparse-1", "bitorder": "big", "values":
"float32" | "float16"}``). A pruned weight ``K`` of shape ``S`` with ``N`` elements is three tensors:

* ``K:bits``: uint8, ``ceil(N / 8)`` bytes, its kept mask flattened in row-major order and packed as
  ``numpy.packbits`` does by default (big-endian bit order: element ``i`` is bit ``7 − i % 8`` of
  byte ``i // 8``; the last byte is padded with 0);
* ``K:values``: the kept values in row-major order, one per set bit;
* ``K:shape``: int64, ``S``.

Every other tensor (biases, BatchNorm, unpruned layers) is stored under its own key as it is, a
floating one cast to float16 on request. At 80 % the file is about 0.2 + 1/32 of the dense float32
file (0.1 + 1/32 in float16).

Fairness re-measured on the artifact (``remeasure=True``): each weights file is read back from the
folder (``model.safetensors``, and ``weights.sparse.safetensors`` through `decode_sparse`, float16
weights loaded into the float32 model as ``load_state_dict`` casts them), loaded with ``strict=True``
into a freshly built model and evaluated on the run's test split with `fapkit.training.evaluation.evaluate`.
The manifest keeps both the run's numbers and the artifact's; a file whose DEO moves by more than
the run's DEO standard error (`deo_standard_error`) is listed in ``remeasured.deo_moved`` and
warned about.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import math
import platform
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import torch
from torch import nn

from . import __version__
from .records import save_bytes, save_json

if TYPE_CHECKING:
    from .cache import RunResult

MODEL_FILE, MASKS_FILE, SPARSE_FILE, ONNX_FILE, MANIFEST = (
    "model.safetensors", "masks.safetensors", "weights.sparse.safetensors", "model.onnx", "manifest.json")
EXPORT_FORMAT, SPARSE_FORMAT = "fapkit-export-1", "fapkit-sparse-1"
#: Largest |ONNX Runtime logit − torch logit| accepted on the check batch.
ONNX_TOLERANCE = 1e-4
_PARTS = (":bits", ":values", ":shape")


def save(result: RunResult, folder: str | Path, *, float16: bool = False, onnx: bool = False,
         remeasure: bool = True, test: Iterable | None = None) -> dict[str, Any]:
    """Write `result`'s deployable files into `folder` (see the module docstring) and return the manifest.

    `folder` is created if needed; an empty folder or an earlier export (its ``manifest.json``) is
    written over, anything else (a file, a folder of other files) is refused with a ValueError
    naming it, as is a result without a model. ``float16``: the sparse file's values (and its other
    floating tensors) in float16. ``onnx``: also ``model.onnx`` (an ImportError naming the ``onnx``
    extra when it is missing; a RuntimeError if onnxruntime's logits differ from torch's by more than
    `ONNX_TOLERANCE`). ``remeasure``: evaluate every weights file on the test split (`test`, a loader
    of ``(x, y, z)`` batches; by default the run's own test split, which a run on the user's loaders
    does not have: it is then skipped with a warning).
    """
    if result.model is None:
        raise ValueError(f"the {result.method!r} result has no model to export (it was loaded without one); "
                         "load it with its model (`fapkit.run` returns one)")
    folder = _export_folder(folder)
    loader = _test_loader(result, test) if remeasure else None  # data first: it is what may be missing
    state = _state(result.model)
    narrowed = _is_channel(result)
    masks = {} if narrowed else _masks(result, state)
    payloads = _payloads(state, masks, float16=float16)
    if narrowed:  # a dense narrowed model has no zeros: neither a mask nor a sparse file means anything
        payloads = {MODEL_FILE: payloads[MODEL_FILE]}
    onnx_check = None
    if onnx:  # before anything is written: a failed check leaves the folder as it was
        payloads[ONNX_FILE], onnx_check = _onnx(result)
    for name, data in payloads.items():
        save_bytes(folder / name, data)
    for stale in {MODEL_FILE, MASKS_FILE, SPARSE_FILE, ONNX_FILE} - set(payloads):  # left by an earlier export
        (folder / stale).unlink(missing_ok=True)
    manifest = _manifest(result, masks, payloads, float16=float16)
    manifest["onnx"] = onnx_check
    if loader is not None:
        manifest["remeasured"] = remeasured(result, folder, loader)
    else:
        manifest["remeasured"] = {"skipped": "remeasure=False" if not remeasure else "no test split"}
    save_json(folder / MANIFEST, manifest)
    return manifest


def decode_sparse(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict a ``weights.sparse.safetensors`` file holds, pruned weights dense again (zeros restored).

    Float32 files decode bit for bit to the exported state dict, float16 files to its ``.half()``.
    A ValueError names a file that is not in this layout.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        found = (handle.metadata() or {}).get("format")
    if found != SPARSE_FORMAT:
        raise ValueError(f"{path} is not a {SPARSE_FORMAT} file (its format is {found!r})")
    flat = load_file(str(path))
    state = {}
    for key, tensor in flat.items():
        if key.endswith(":values"):
            name = key[: -len(":values")]
            shape = flat[f"{name}:shape"].tolist()
            kept = np.unpackbits(flat[f"{name}:bits"].numpy(), count=math.prod(shape)).astype(bool)
            dense = torch.zeros(math.prod(shape), dtype=tensor.dtype)
            dense[torch.from_numpy(kept)] = tensor
            state[name] = dense.reshape(shape)
        elif not key.endswith(_PARTS):
            state[key] = tensor
    return state


def deo_standard_error(groups: dict[Any, dict[str, Any]]) -> float:
    """Standard error of DEO (the summed TPR and FPR gaps) from one run's group rates, by the delta method.

    The kit has no per-run DEO error of its own (`fapkit.stats` works over seeds), so this is the
    binomial one: each gap ``max_g r_g − min_g r_g`` has variance ``Σ r(1 − r)/n`` over its two
    groups (``n`` = the group's positives for the TPR, negatives for the FPR), and the two gaps,
    taken on disjoint samples, add. For two groups it is the four ``(y, z)`` cells' binomial errors in
    quadrature (README "Presets": 0.018 at 10,000 test images); with more groups it treats the
    extreme groups as known, a slight underestimate. ``groups`` is `fapkit.fairness.metrics.group_rates`
    (int or str keys).
    """
    variance = 0.0
    for rate, count in (("tpr", "n_pos"), ("fpr", "n_neg")):
        cells = sorted((float(g[rate]), int(g[count])) for g in groups.values()
                       if int(g.get(count, 0)) > 0 and math.isfinite(float(g[rate])))
        if len(cells) < 2:
            return math.nan
        variance += sum(r * (1.0 - r) / n for r, n in (cells[0], cells[-1]))
    return math.sqrt(variance)


def remeasured(result: RunResult, folder: Path, loader: Iterable) -> dict[str, Any]:
    """Test metrics of each weights file in `folder`, read back into a fresh model, against the run's own."""
    from safetensors.torch import load_file

    from .training.evaluation import evaluate

    run = {k: result.metrics[k] for k in ("acc", "di", "deo")}
    se = deo_standard_error(result.metrics["groups"])
    states = {MODEL_FILE: load_file(str(folder / MODEL_FILE))}
    if not _is_channel(result):
        states[SPARSE_FILE] = decode_sparse(folder / SPARSE_FILE)
    files = {}
    for name, state in states.items():
        model = _fresh_model(result, state)
        model.load_state_dict(state, strict=True)
        m = evaluate(model, loader, device="cpu", groups=len(result.metrics["groups"]), fused=True)
        change = m["deo"] - run["deo"]
        files[name] = {"acc": m["acc"], "di": m["di"], "deo": m["deo"], "deo_max": m["deo_max"], "n": m["n"],
                       "groups": m["groups"], "deo_change": change, "deo_moved": bool(abs(change) > se)}
    moved = [name for name, f in files.items() if f["deo_moved"]]
    for name in moved:
        warnings.warn(f"{folder / name}: DEO on the test split moved from {run['deo']:.4f} (the run) to "
                      f"{files[name]['deo']:.4f}, more than its standard error {se:.4f}: the exported weights do "
                      "not measure as fair as the run did", UserWarning, stacklevel=3)
    return {"split": "test", "run": run, "deo_standard_error": se,
            "standard_error": "delta method on the run's test group rates (fapkit.export.deo_standard_error)",
            "files": files, "deo_moved": moved}


# ----------------------------------------------------------------------------- what is written


def _export_folder(folder: str | Path) -> Path:
    """`folder` as a Path, refused unless it is new, empty or an earlier export."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"export folder {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not _is_export(folder):
        raise ValueError(f"export folder {folder} is not empty and holds no earlier fapkit export (no {MANIFEST} "
                         f"of format {EXPORT_FORMAT}); choose a new or empty folder")
    return folder


def _is_export(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST).read_text()).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict on the CPU, each tensor contiguous and owning its memory (safetensors refuses shared ones)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _masks(result: RunResult, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{weight key: kept mask}`` of every layer the result's records list as masked (``weight != 0``)."""
    masks = {}
    for row in result.layers:
        key = f"{row['name']}.weight"
        if key not in state:
            raise ValueError(f"the {result.method!r} result lists a masked layer {row['name']!r} that its model "
                             "does not have")
        masks[key] = state[key] != 0
    return masks


def _payloads(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], *, float16: bool) -> dict[str, bytes]:
    from safetensors.torch import save as safetensors_bytes

    return {MODEL_FILE: safetensors_bytes(state, metadata={"format": "pt"}),
            MASKS_FILE: safetensors_bytes({f"{key}_mask": mask for key, mask in masks.items()},
                                          metadata={"format": "pt"}),
            SPARSE_FILE: _sparse_bytes(state, masks, float16=float16)}


def _sparse_bytes(state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], *, float16: bool) -> bytes:
    """``weights.sparse.safetensors`` in the layout of the module docstring."""
    from safetensors.torch import save as safetensors_bytes

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.half() if float16 and t.is_floating_point() else t

    tensors = {}
    for key, tensor in state.items():
        if key in masks:
            kept = masks[key].reshape(-1)
            tensors[f"{key}:bits"] = torch.from_numpy(np.packbits(kept.numpy()))
            tensors[f"{key}:values"] = cast(tensor.reshape(-1)[kept]).contiguous()
            tensors[f"{key}:shape"] = torch.tensor(tensor.shape, dtype=torch.int64)
        else:
            tensors[key] = cast(tensor)
    metadata = {"format": SPARSE_FORMAT, "bitorder": "big", "values": "float16" if float16 else "float32"}
    return safetensors_bytes(tensors, metadata=metadata)


def _manifest(result: RunResult, masks: dict[str, torch.Tensor], payloads: dict[str, bytes], *,
              float16: bool) -> dict[str, Any]:
    from safetensors import __version__ as safetensors_version

    from .cache import stage_settings
    from .registry import spec_of

    dense = len(payloads[MODEL_FILE])
    return {
        "format": EXPORT_FORMAT,
        "architecture": _architecture(result),
        "input": {"shape": ["batch", 3, result.config.data.size, result.config.data.size], "dtype": "float32",
                  "values": "RGB in [0, 1] (uint8 / 255), no mean/std normalisation (the kit's loaders)",
                  "output": "one logit per image; the prediction is logit > 0"},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": _torchvision_version(), "safetensors": safetensors_version, "fapkit": __version__},
        "method": result.method, "method_title": spec_of(result.method).title,
        "config": result.config.to_dict(), "settings": stage_settings(result.method, result.config),
        "run_dir": result.run_dir,
        "structure": "channel" if _is_channel(result) else "weight",
        **({"channels": _channels(result)} if _is_channel(result) else {"sparsity": _sparsity(result, masks)}),
        "metrics": {"test": result.metrics, "valid": result.valid_metrics},
        "sparse_values": "float16" if float16 else "float32",
        "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in payloads.items()},
        "size_to_dense": {name: len(data) / dense for name, data in payloads.items()},
    }


def _sparsity(result: RunResult, masks: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Per-layer and total fractions removed, as written in the masks (and the run's own figures)."""
    recorded = {f"{row['name']}.weight": row.get("kept") for row in result.layers}
    layers = []
    for key, mask in masks.items():
        n, kept = mask.numel(), int(mask.sum())
        row = {"name": key[: -len(".weight")], "shape": list(mask.shape), "n": n, "kept": kept, "ratio": 1 - kept / n}
        if recorded[key] is not None and recorded[key] != kept:
            row["recorded_kept"] = recorded[key]  # a kept weight that is exactly 0 reads as pruned here
        layers.append(row)
    n = sum(row["n"] for row in layers)
    kept = sum(row["kept"] for row in layers)
    parameters = sum(p.numel() for p in result.model.parameters())
    return {"mask": "weight != 0 on the layers the run masked", "layers": layers,
            "ratio_prunable": 1 - kept / n if n else 0.0, "ratio_all": (n - kept) / parameters if parameters else 0.0,
            "run_ratio": result.ratio, "run_ratio_all": result.ratio_all, "run_totals": result.mask_totals}


def _is_channel(result: RunResult) -> bool:
    """A channel-pruned run: its model is the narrowed one (`fapkit.surgery.shrink`)."""
    from .registry import spec_of

    return getattr(result.config, "structure", "weight") == "channel" and not spec_of(result.method).dense


def _channels(result: RunResult) -> dict[str, Any]:
    """Per-layer kept output channels (dense → narrowed) and the parameter and MAC counts of both models."""
    totals = result.mask_totals
    layers = [{"name": layer, "group": row["name"], "channels": row["n"], "kept": row["kept"]}
              for row in result.layers for layer in row.get("layers", [row["name"]])]
    return {"mask": "whole output channels removed; load with fapkit.surgery.rebuild(arch, state_dict) or narrow "
                    "each Conv2d/BatchNorm/Linear of the plain architecture to the saved shapes",
            "layers": layers, "ratio_channels": result.ratio, "ratio_parameters": result.ratio_all,
            **{k: totals.get(k) for k in ("channels", "kept_channels", "parameters", "kept_parameters", "macs",
                                          "kept_macs")},
            "ratio_macs": 1 - totals["kept_macs"] / totals["macs"] if totals.get("macs") else None}


def _architecture(result: RunResult) -> dict[str, Any]:
    """What builds the model: the kit's architecture and its constructor arguments, or the user's module's class."""
    arch = result.config.arch
    if not _is_kit_model(result):
        cls = type(result.model)
        return {"name": None, "constructor": f"{cls.__module__}.{cls.__qualname__}", "arguments": None}
    narrowed = {"narrowed": "fapkit.surgery.rebuild"} if _is_channel(result) else {}
    if arch == "small_cnn":
        return {"name": arch, "constructor": "fapkit.models.SmallCNN", "arguments": {"width": 16}, **narrowed}
    return {"name": arch, "constructor": f"torchvision.models.{arch}", "arguments": {"weights": None, "num_classes": 1},
            **narrowed}


def _is_kit_model(result: RunResult) -> bool:
    """Whether the model is the config's architecture (same keys and shapes), not a user's module."""
    from .models import build_model

    theirs = result.model.state_dict()
    ours = build_model(result.config.arch).state_dict()
    if _is_channel(result):  # narrower, same keys and module classes
        return ours.keys() == theirs.keys()
    return ours.keys() == theirs.keys() and all(ours[k].shape == theirs[k].shape for k in ours)


def _fresh_model(result: RunResult, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A newly built model of the run's architecture (a copy of the user's module, whose class the kit cannot build);
    for a channel run narrowed to `state`'s shapes (`fapkit.surgery.rebuild`)."""
    from .models import build_model

    if _is_channel(result) and state is not None:
        from .surgery import rebuild

        return rebuild(result.config.arch if _is_kit_model(result) else result.model, state)
    return build_model(result.config.arch) if _is_kit_model(result) else copy.deepcopy(result.model)


def _test_loader(result: RunResult, test: Iterable | None) -> Iterable | None:
    """`test`, else the run's test split as the run evaluated it; None (with a warning) for a run on the user's loaders."""
    if test is not None:
        return test
    if result.run_dir is not None and "-uncached-" in Path(result.run_dir).name:  # `fapkit.runner`' name for them
        warnings.warn(f"the {result.method!r} run used your own model or loaders: its test split is not the kit's, so "
                      "the exported files are not re-measured; pass test= (a loader of (x, y, z) batches)",
                      UserWarning, stacklevel=3)
        return None
    from .runner import _dataset_loaders  # the very loaders `fapkit.run` evaluates on

    return _dataset_loaders(result.config)[2]


# ----------------------------------------------------------------------------- ONNX


def _onnx(result: RunResult) -> tuple[bytes, dict[str, Any]]:
    """``model.onnx`` (batch axis dynamic) and its check against torch with onnxruntime, when installed."""
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"model.onnx needs {' and '.join(missing)}: install the kit's 'onnx' extra "
                          "(pip install 'fapkit[onnx]': onnx, onnxruntime, onnxscript)")
    model = copy.deepcopy(result.model).cpu().eval()
    size = result.config.data.size
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ONNX_FILE
        program = torch.onnx.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                                    dynamo=True, verbose=False)
        program.save(str(path))
        data = path.read_bytes()
    return data, _onnx_check(data, model, size)


def _onnx_check(data: bytes, model: nn.Module, size: int, batch: int = 8) -> dict[str, Any]:
    if importlib.util.find_spec("onnxruntime") is None:
        return {"checked": False, "why": "onnxruntime is not installed"}
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(got.reshape(expected.shape) - expected).max())
    if not diff <= ONNX_TOLERANCE:
        raise RuntimeError(f"model.onnx gives logits up to {diff:.3g} away from torch's on a batch of {batch} "
                           f"(tolerance {ONNX_TOLERANCE:g}); not written")
    return {"checked": True, "runtime": f"onnxruntime {onnxruntime.__version__}", "batch": batch,
            "max_abs_diff": diff, "tolerance": ONNX_TOLERANCE}


def _torchvision_version() -> str:
    import torchvision  # on demand: importing it costs seconds, and a small_cnn run needs none

    return torchvision.__version__

