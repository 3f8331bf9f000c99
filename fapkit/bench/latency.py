"""CPU latency of an exported pruned model against the dense one (issue 25's deployment question).

An 80 %-unstructured-sparse ResNet-18 is the dense network with zeros in it: torch and ONNX Runtime
run the same dense kernels, so it should be no faster. This bench measures that claim instead of
stating it: eval-mode inference of the dense model and of its magnitude-pruned copy (the file
``model.safetensors`` holds), in torch and, when installed, in ONNX Runtime (`fapkit.export`'s
``model.onnx``), at batch 1 and 32 and 1 and 2 threads, interleaved so that machine noise hits both
alike; medians, and pruned / dense ratios measured in one run. Channel pruning (a smaller dense
network) is what should be faster: the same measurement times the narrowed model of a magnitude
channel mask at `channel_ratio` (`fapkit.masking.channels`, `fapkit.surgery.shrink`; what a
``structure="channel"`` run exports), as ``channel_over_dense`` in the same interleaved rounds.
"""
from __future__ import annotations

import copy
import importlib.util
import statistics
from collections.abc import Callable

import torch
from torch import nn

from ..masking import magnitude_masks
from ..models import build_model
from .masking import interleaved_times


def _pruned(model: nn.Module, ratio: float) -> nn.Module:
    """A copy of `model` with each layer's `ratio` smallest weights set to zero (LMW's mask), as exported."""
    plain = copy.deepcopy(model)
    layers = dict(plain.named_modules())
    with torch.no_grad():
        for name, mask in magnitude_masks(plain, ratio).items():
            layers[name].weight.mul_(mask.to(layers[name].weight.dtype))
    return plain


def _narrowed(model: nn.Module, ratio: float, size: int) -> nn.Module:
    """A copy of `model` with the `ratio` of each channel group of smallest norm removed (a channel run's export)."""
    from ..masking.channels import attach_channel_fixed, channel_magnitude_masks

    plain = copy.deepcopy(model)
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    masks = channel_magnitude_masks(plain, ratio, example=example)
    return attach_channel_fixed(plain, masks, example=example).export()


def _median_ms(runners: dict[str, Callable[[], object]], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median ms of each runner, the runners interleaved (`fapkit.bench.masking.interleaved_times`)."""
    return {name: statistics.median(ts) for name, ts in interleaved_times(runners, repeats, warmup).items()}


def _onnx_session(model: nn.Module, size: int, threads: int):
    """An ONNX Runtime session of `model`, or None when the ``onnx`` extra is not installed."""
    if any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")):
        return None
    import onnxruntime

    example = torch.rand(2, 3, size, size)
    program = torch.onnx.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                                dynamo=True, verbose=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(program.model_proto.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def bench_latency(*, arch: str = "resnet18", ratio: float = 0.8, channel_ratio: float = 0.5, size: int = 32,
                  batches: tuple[int, ...] = (1, 32), threads: tuple[int, ...] = (1, 2), repeats: int = 20) -> dict:
    """Median inference ms of the dense, the unstructured-pruned and the channel-pruned (narrowed) model per
    (runtime, batch, threads), and their ratios to the dense one."""
    dense = build_model(arch, seed=0).eval()
    models = {"dense": dense, "pruned": _pruned(dense, ratio).eval(), "channel": _narrowed(dense, channel_ratio, size).eval()}
    saved = torch.get_num_threads()
    rows = []
    try:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            sessions = {name: _onnx_session(m, size, n_threads) for name, m in models.items()}
            for batch in batches:
                x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
                with torch.inference_mode():
                    ms = _median_ms({name: (lambda m=m: m(x)) for name, m in models.items()}, repeats)
                rows.append({"runtime": "torch", "batch": batch, "threads": n_threads, **_row(ms)})
                if sessions["dense"] is not None:
                    feed = {sessions["dense"].get_inputs()[0].name: x.numpy()}
                    ms = _median_ms({name: (lambda s=s: s.run(None, feed)) for name, s in sessions.items()}, repeats)
                    rows.append({"runtime": "onnxruntime", "batch": batch, "threads": n_threads, **_row(ms)})
    finally:
        torch.set_num_threads(saved)
    return {"arch": arch, "ratio": ratio, "channel_ratio": channel_ratio, "size": size, "repeats": repeats,
            "rows": rows}


def _row(ms: dict[str, float]) -> dict[str, float]:
    return {"dense_ms": ms["dense"], "pruned_ms": ms["pruned"], "pruned_over_dense": ms["pruned"] / ms["dense"],
            "channel_ms": ms["channel"], "channel_over_dense": ms["channel"] / ms["dense"]}


if __name__ == "__main__":
    import json

    print(json.dumps(bench_latency(), indent=2))
