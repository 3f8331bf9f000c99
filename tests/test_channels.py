"""Channel (structured) pruning: coupled groups, gates equal surgery, kept counts, STE, settings, cache and export."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import fapkit
from fapkit.cache import stage_key
from fapkit.config import make_config
from fapkit.masking.channels import (
    attach_channel_fixed,
    attach_channel_scores,
    channel_groups,
    channel_magnitude_masks,
    channel_norms,
)
from fapkit.models import build_model
from fapkit.surgery import count, rebuild

X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


class MLP(nn.Module):
    """A user's model: hidden Linear units are the channels, the last Linear gives the logit."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.body(x))


def _shaken(model: nn.Module) -> nn.Module:
    """Random BN statistics and affine terms, so a bias or β leaking through a pruned channel would show."""
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


def _model(arch: str) -> tuple[nn.Module, torch.Tensor]:
    if arch == "mlp":
        torch.manual_seed(0)
        return MLP().eval(), torch.rand(4, 12)
    return _shaken(build_model(arch, seed=0)), X


def test_groups_couple_what_is_summed_and_leave_the_classifier_out():
    resnet = build_model("resnet18", seed=0)
    groups = channel_groups(resnet, X)
    stage1 = groups["conv1"]  # the stem and layer1's second convs meet in the residual additions
    assert {"conv1", "layer1.0.conv2", "layer1.1.conv2"} <= set(stage1.producers)
    assert {"bn1", "layer1.0.bn2", "layer1.1.bn2"} == set(stage1.gates)  # gated after their BatchNorms
    assert set(groups["layer1.0.conv1"].producers) == {"layer1.0.conv1"}
    assert all("fc" not in g.producers for g in groups.values()) and "fc" in groups["layer4.0.conv2"].consumers
    mobilenet = build_model("mobilenet_v2", seed=0)
    mgroups = channel_groups(mobilenet, X)
    expansion = mgroups["features.2.conv.0.0"]  # the 1×1 expansion conv with the depthwise conv it feeds
    assert set(expansion.producers) == {"features.2.conv.0.0", "features.2.conv.1.0"}
    assert set(expansion.gates) == {"features.2.conv.0.1", "features.2.conv.1.1"}
    assert all("classifier.1" not in g.producers for g in mgroups.values())
    mlp = channel_groups(MLP(), torch.rand(2, 12))
    assert list(mlp) == ["body.1", "body.3"] and mlp["body.1"].gates == ("body.1",)  # no BN: the Linear's output


def test_shufflenet_is_refused_by_name():
    with pytest.raises(ValueError, match="shufflenet_v2_x1_0.*channel shuffle"):
        make_config("sgdp", structure="channel", arch="shufflenet_v2_x1_0")


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "mlp"])
def test_gated_model_equals_the_shrunk_one_and_is_smaller_by_the_kept_counts(arch):
    model, x = _model(arch)
    dense_macs, dense_params = count(model, x)
    masker = attach_channel_fixed(model, channel_magnitude_masks(model, 0.5, example=x), example=x)
    model.eval()
    narrow = masker.export().eval()
    with torch.no_grad():
        assert float((model(x) - narrow(x)).abs().max()) <= 1e-5
    assert type(narrow) is type(model)
    for row in masker.report():
        assert row["kept"] == round(row["n"] / 2)
        for layer in row["layers"]:  # every producing layer keeps exactly its group's channels
            module = narrow.get_submodule(layer)
            assert (module.out_channels if isinstance(module, nn.Conv2d) else module.out_features) == row["kept"]
    macs, params = count(narrow, x)
    assert params < dense_params and macs < dense_macs
    summary = masker.summary()
    assert summary["kept_parameters"] == params == sum(p.numel() for p in narrow.parameters())
    assert summary["ratio_prunable"] == pytest.approx(0.5, abs=0.01) and summary["ratio_all"] > 0.3


def test_mlp_parameters_follow_the_kept_units_exactly():
    model, x = _model("mlp")
    masker = attach_channel_fixed(model, channel_magnitude_masks(model, 0.5, example=x), example=x)
    narrow = masker.export()
    assert sum(p.numel() for p in narrow.parameters()) == (12 * 8 + 8) + (8 * 4 + 4) + (4 + 1)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_kept_counts(scope):
    model = build_model("resnet18", seed=0)
    masker = attach_channel_scores(model, 0.7, scope=scope, example=X)
    masks = masker.masks()
    if scope == "layer":
        assert all(int(m.sum()) == max(1, round(0.3 * m.numel())) for m in masks.values())
    else:
        total = sum(m.numel() for m in masks.values())
        assert sum(int(m.sum()) for m in masks.values()) == round(0.3 * total)
        assert all(int(m.sum()) >= 1 for m in masks.values())
    assert sum(int(m.sum()) for m in attach_channel_scores(build_model("small_cnn"), 0.99, scope="global",
                                                           example=X).masks().values()) == 3  # one per group


def test_magnitude_init_is_the_magnitude_mask_and_the_ste_reaches_the_scores():
    model = build_model("small_cnn", seed=0)
    fixed = channel_magnitude_masks(model, 0.5, example=X)
    masker = attach_channel_scores(model, 0.5, example=X)
    assert all(torch.equal(fixed[k], v) for k, v in masker.masks().items())
    model(X).sum().backward()
    grads = [p.grad for p in masker.score_parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    norms = channel_norms(model, masker.groups)
    assert all(n.shape == m.shape for n, m in zip(norms.values(), masker.masks().values()))


def test_bad_values_and_methods_are_refused_by_name():
    with pytest.raises(ValueError, match="structure must be one of 'weight', 'channel', got 'filter'"):
        make_config("sgdp", structure="filter")
    for method in ("scratch", "fairgrape", "ceag"):
        with pytest.raises(ValueError, match=f"applies to 'sgdp', 'lmw', 'fair_sgdp', 'fair_lmw', 'faprune', not '{method}'"):
            make_config(method, structure="channel")
    make_config("normal", structure="channel")  # a dense stage does not prune: the setting is not read


def test_weight_structure_keeps_todays_keys_and_channel_changes_only_pruned_stages():
    base = make_config("faprune")
    assert stage_key("faprune", base) == stage_key("faprune", make_config("faprune", structure="weight"))
    assert "structure" not in json.dumps(fapkit.cache.stage_settings("faprune", base))
    channel = make_config("faprune", structure="channel")
    for method in ("sgdp", "lmw", "fair_sgdp", "fair_lmw", "faprune"):
        assert stage_key(method, channel) != stage_key(method, base)
    for method in ("normal", "adv_debias"):  # the dense models are shared
        assert stage_key(method, channel) == stage_key(method, base)


def test_weight_key_is_the_one_of_before(monkeypatch):
    """The key of an existing config, written down before `structure` existed (kit version pinned)."""
    monkeypatch.setattr(fapkit.cache, "__version__", "0.0-pinned")
    assert stage_key("sgdp", make_config("sgdp", preset="smoke")) == "d6ed05086716e0f0"  # computed at d539d47
    assert stage_key("lmw", make_config("lmw", preset="quick")) == "33145b346d4caf66"


TINY = dict(preset="smoke", pretrain_epochs=1, epochs=1, ratio=0.5, n_train=256, n_valid=128, n_test=128)


@pytest.fixture(scope="module")
def channel_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return runs, {m: fapkit.run(m, structure="channel", runs_dir=runs, **TINY) for m in ("sgdp", "faprune", "lmw")}


def test_channel_runs_learn_a_mask_and_say_channel(channel_runs):
    runs, results = channel_runs
    for method in ("sgdp", "faprune"):
        assert results[method].history[-1]["mask_changed"] > 0
    for method, r in results.items():
        assert r.config.structure == "channel" and r.layers[0]["type"] == "channels"
        assert r.ratio == pytest.approx(0.5, abs=0.01) and r.mask_totals["kept_macs"] < r.mask_totals["macs"]
        assert r.model.features[0].out_channels == 8  # the result's model is the narrowed one
    again = fapkit.run("faprune", structure="channel", runs_dir=runs, **TINY)  # from the cache, rebuilt narrow
    assert again.acc == results["faprune"].acc and again.model.features[3].out_channels == 16


def test_round_trip_in_a_fresh_process(channel_runs, tmp_path):
    _, results = channel_runs
    result = results["faprune"]
    manifest = result.save(tmp_path / "export")
    assert manifest["structure"] == "channel" and manifest["channels"]["kept_parameters"] < manifest["channels"]["parameters"]
    expected = tmp_path / "expected.pt"
    torch.manual_seed(3)
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        torch.save({"x": x, "logits": result.model.eval()(x)}, expected)
    code = ("import torch; from safetensors.torch import load_file; from fapkit.surgery import rebuild; "
            f"m = rebuild('small_cnn', load_file({str(tmp_path / 'export' / 'model.safetensors')!r})).eval(); "
            f"e = torch.load({str(expected)!r}); "
            "assert torch.equal(m(e['x']), e['logits']), 'logits differ'; print('same')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "same" in out.stdout, out.stderr


def test_rebuild_narrows_a_shrunk_resnet():
    model, x = _model("resnet18")
    narrow = attach_channel_fixed(model, channel_magnitude_masks(model, 0.5, example=x), example=x).export().eval()
    again = rebuild("resnet18", narrow.state_dict()).eval()
    with torch.no_grad():
        assert torch.equal(again(x), narrow(x))


def test_the_narrowed_model_runs_from_its_onnx_file_in_a_process_without_the_kit_or_torch(channel_runs, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = channel_runs[1]["faprune"]
    manifest = result.save(tmp_path / "export", onnx=True, remeasure=False)
    assert manifest["onnx"]["checked"] and manifest["onnx"]["max_abs_diff"] <= 1e-4
    torch.manual_seed(4)
    x = torch.rand(6, 3, 32, 32)  # another batch size than the export's example
    with torch.no_grad():
        want = result.model.eval()(x).numpy()
    import numpy as np

    np.save(tmp_path / "x.npy", x.numpy())
    code = ("import sys; sys.modules['fapkit'] = None; sys.modules['torch'] = None\n"  # importing either now fails
            "import numpy as np, onnxruntime as ort\n"
            f"s = ort.InferenceSession({str(tmp_path / 'export' / 'model.onnx')!r}, providers=['CPUExecutionProvider'])\n"
            f"y = s.run(None, {{s.get_inputs()[0].name: np.load({str(tmp_path / 'x.npy')!r})}})[0]\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, y)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    got = np.load(tmp_path / "y.npy")
    assert got.shape == want.shape and abs(got - want).max() <= 1e-4
