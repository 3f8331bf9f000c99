"""A run's deployable files (`fapkit.export`): load without the kit, masks, the sparse layout, sizes, refusals, re-measurement."""
import hashlib
import json
import math
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torchvision
from fake_results import groups
from safetensors.torch import load_file, save_file
from torch.nn.utils import prune

import fapkit
from fapkit.cache import RunResult, load_run, stage_key
from fapkit.cli import main, parse
from fapkit.config import make_config
from fapkit.export import MASKS_FILE, MODEL_FILE, ONNX_FILE, SPARSE_FILE, decode_sparse, deo_standard_error, save
from fapkit.masking import attach_fixed, magnitude_masks
from fapkit.models import build_model

TINY = dict(preset="smoke", size=16, n_train=192, n_valid=96, n_test=96, pretrain_epochs=1, epochs=1)
ARCHS = ("resnet18", "mobilenet_v2")


def pruned(arch: str, ratio: float = 0.8, **metrics) -> RunResult:
    """A RunResult whose model has its `ratio` smallest-magnitude weights per layer at 0, as LMW leaves it (no training).

    BatchNorm statistics are random so that they, too, have to survive the files.
    """
    model = build_model(arch, seed=0)
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
            module.num_batches_tracked.fill_(7)
    masker = attach_fixed(model, magnitude_masks(model, ratio))
    layers = [asdict(r) for r in masker.report()]
    cfg = make_config("lmw", preset="quick", arch=arch, ratio=ratio)
    values = {"acc": 0.8, "di": 0.5, "deo": 0.2, "groups": groups(), **metrics}
    return RunResult("lmw", cfg, values, masker.summary()["ratio_prunable"], masker.summary()["ratio_all"], [],
                     masker.export().eval(), None, layers=layers, mask_totals=masker.totals())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{(arch, float16): (result, folder)}``, written once for the module."""
    out = {}
    for arch in ARCHS:
        result = pruned(arch)
        for float16 in (False, True):
            folder = tmp_path_factory.mktemp(f"{arch}-{'f16' if float16 else 'f32'}")
            save(result, folder, float16=float16, remeasure=False)
            out[arch, float16] = result, folder
    return out


_NO_KIT = """
import sys
class NoKit:  # the kit is installed in this venv: hide it, so only torch, torchvision and safetensors are here
    def find_spec(self, name, path=None, target=None):
        if name == "fapkit" or name.startswith("fapkit."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoKit())
try:
    import fapkit
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("fapkit is importable")
"""

_LOAD = """
import torch, torchvision
from safetensors.torch import load_file, save_file
torch.set_num_threads(int(sys.argv[4]))
model = getattr(torchvision.models, sys.argv[1])(num_classes=1)
model.load_state_dict(load_file(sys.argv[2] + "/model.safetensors"), strict=True)
with torch.no_grad():
    logits = model.eval()(load_file(sys.argv[3])["x"])
save_file({"logits": logits}, sys.argv[3] + ".out")
assert "fapkit" not in sys.modules
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_a_fresh_process_without_the_kit_loads_the_model_strictly_and_gives_identical_logits(arch, exported, tmp_path):
    result, folder = exported[arch, False]
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    save_file({"x": x}, tmp_path / "x.safetensors")
    script = textwrap.dedent(_NO_KIT) + textwrap.dedent(_LOAD)
    out = subprocess.run([sys.executable, "-I", "-c", script, arch, str(folder), str(tmp_path / "x.safetensors"),
                          str(torch.get_num_threads())], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    with torch.no_grad():
        ours = result.model(x)
    theirs = load_file(tmp_path / "x.safetensors.out")["logits"]
    assert (theirs - ours).abs().max().item() == 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_masks_fit_custom_from_mask_and_the_masked_module_equals_the_saved_weights(arch, exported):
    result, folder = exported[arch, False]
    masks, weights = load_file(folder / MASKS_FILE), load_file(folder / MODEL_FILE)
    assert set(masks) == {f"{row['name']}.weight_mask" for row in result.layers}
    model = getattr(torchvision.models, arch)(num_classes=1)
    model.load_state_dict(weights, strict=True)
    for row in result.layers:
        mask = masks[f"{row['name']}.weight_mask"]
        assert mask.dtype == torch.bool and int(mask.sum()) == row["kept"]
        module = model.get_submodule(row["name"])
        prune.custom_from_mask(module, "weight", mask)
        assert torch.equal(module.weight, weights[f"{row['name']}.weight"])


@pytest.mark.parametrize("arch", ARCHS)
def test_the_sparse_file_decodes_bit_exactly_in_float32_and_to_half_in_float16(arch, exported):
    result, folder = exported[arch, False]
    state = result.model.state_dict()
    decoded = decode_sparse(folder / SPARSE_FILE)
    assert decoded.keys() == state.keys()
    for key, tensor in state.items():
        assert decoded[key].dtype == tensor.dtype and torch.equal(decoded[key], tensor), key
    half = decode_sparse(exported[arch, True][1] / SPARSE_FILE)
    for key, tensor in state.items():
        want = tensor.half() if tensor.is_floating_point() else tensor
        assert half[key].dtype == want.dtype and torch.equal(half[key], want), key


def test_the_sparse_file_is_a_quarter_of_the_dense_one_at_80_percent_on_resnet18(exported):
    for float16, bound in ((False, 0.25), (True, 0.14)):
        folder = exported["resnet18", float16][1]
        ratio = (folder / SPARSE_FILE).stat().st_size / (folder / MODEL_FILE).stat().st_size
        assert ratio <= bound, (float16, ratio)


def test_the_sparse_layout_is_stated_in_its_metadata_and_a_foreign_file_is_refused(exported):
    from safetensors import safe_open

    folder = exported["resnet18", True][1]
    with safe_open(str(folder / SPARSE_FILE), framework="pt") as handle:
        assert handle.metadata() == {"format": "fapkit-sparse-1", "bitorder": "big", "values": "float16"}
        assert handle.get_tensor("conv1.weight:bits").dtype == torch.uint8
    with pytest.raises(ValueError, match="model.safetensors is not a fapkit-sparse-1 file"):
        decode_sparse(folder / MODEL_FILE)


def test_the_manifest_hashes_the_files_and_describes_the_model(exported):
    result, folder = exported["resnet18", False]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {MODEL_FILE, MASKS_FILE, SPARSE_FILE}
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["architecture"] == {"name": "resnet18", "constructor": "torchvision.models.resnet18",
                                        "arguments": {"weights": None, "num_classes": 1}}
    assert manifest["versions"]["torch"] == torch.__version__ and manifest["versions"]["fapkit"] == fapkit.__version__
    assert manifest["method"] == "lmw" and manifest["config"]["arch"] == "resnet18" and manifest["config"]["ratio"] == 0.8
    assert manifest["settings"]["ratio"] == 0.8 and "data" in manifest["settings"]
    assert manifest["sparsity"]["ratio_prunable"] == pytest.approx(result.ratio)
    assert len(manifest["sparsity"]["layers"]) == len(result.layers)
    assert manifest["metrics"]["test"]["deo"] == 0.2 and manifest["remeasured"] == {"skipped": "remeasure=False"}


def test_bad_folders_and_a_run_without_a_model_are_refused_by_name(tmp_path):
    result = pruned("small_cnn")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match=f"{afile} exists and is not a folder"):
        save(result, afile, remeasure=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=f"{other} is not empty and holds no earlier fapkit export"):
        result.save(other, remeasure=False)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    modelless = RunResult("faprune", result.config, result.metrics, 0.8, 0.7, [])
    with pytest.raises(ValueError, match="the 'faprune' result has no model"):
        modelless.save(tmp_path / "new", remeasure=False)
    assert not (tmp_path / "new").exists()


def test_an_earlier_export_is_written_over_and_its_stale_files_removed(tmp_path):
    result = pruned("small_cnn")
    (tmp_path / "out").mkdir()
    result.save(tmp_path / "out", remeasure=False)
    (tmp_path / "out" / ONNX_FILE).write_bytes(b"from an earlier export with onnx=True")
    manifest = result.save(tmp_path / "out", float16=True, remeasure=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([*manifest["files"], "manifest.json"])
    assert manifest["sparse_values"] == "float16"


def test_onnx_export_matches_torch_on_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = pruned("small_cnn")
    manifest = result.save(tmp_path / "out", onnx=True, remeasure=False)
    assert manifest["onnx"]["checked"] and manifest["onnx"]["max_abs_diff"] <= 1e-4
    assert manifest["files"][ONNX_FILE]["sha256"] == hashlib.sha256((tmp_path / "out" / ONNX_FILE).read_bytes()).hexdigest()
    session = ort.InferenceSession(str(tmp_path / "out" / ONNX_FILE), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 32, 32)  # another batch size than the export's example: the batch axis is dynamic
    with torch.no_grad():
        want = result.model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert abs(got - want).max() <= 1e-4


def test_onnx_without_the_extra_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ImportError, match=r"onnxscript: install the kit's 'onnx' extra \(pip install 'fapkit\[onnx\]'"):
        pruned("small_cnn").save(tmp_path / "out", onnx=True, remeasure=False)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_deo_standard_error_is_the_four_cells_binomial_errors_in_quadrature():
    rates = {0: {"tpr": 0.6, "fpr": 0.2, "n_pos": 100, "n_neg": 300}, 1: {"tpr": 0.9, "fpr": 0.4, "n_pos": 50, "n_neg": 80}}
    want = math.sqrt(0.6 * 0.4 / 100 + 0.9 * 0.1 / 50 + 0.2 * 0.8 / 300 + 0.4 * 0.6 / 80)
    assert deo_standard_error(rates) == pytest.approx(want)
    assert deo_standard_error({str(g): r for g, r in rates.items()}) == pytest.approx(want)  # keys after JSON


def test_an_artifact_whose_deo_moves_beyond_its_standard_error_is_flagged(tmp_path):
    result = pruned("small_cnn", deo=0.9)  # the run "measured" 0.9; the loader below gives another DEO
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(64, 3, 32, 32, generator=gen)
    y, z = torch.arange(64) % 2, (torch.arange(64) // 2) % 2  # every (y, z) cell has samples
    with pytest.warns(UserWarning, match="DEO on the test split moved from 0.9000"):
        manifest = result.save(tmp_path / "out", test=[(x, y, z)])
    remeasured = manifest["remeasured"]
    assert remeasured["deo_moved"] == [MODEL_FILE, SPARSE_FILE]
    assert remeasured["deo_standard_error"] == pytest.approx(deo_standard_error(groups()))


def test_a_run_on_the_users_loaders_is_not_remeasured_without_a_test_loader(tmp_path):
    result = pruned("small_cnn")
    result.run_dir = str(tmp_path / "runs" / "lmw-uncached-20250101-000000-abc")
    with pytest.warns(UserWarning, match="pass test="):
        manifest = result.save(tmp_path / "out")
    assert manifest["remeasured"] == {"skipped": "no test split"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """FAPrune on the smoke preset's four-layer CNN and a tiny SynthFaces, cached in its own runs folder."""
    return fapkit.run("faprune", runs_dir=tmp_path_factory.mktemp("runs"), **TINY)


def test_a_real_run_is_remeasured_on_its_test_split_and_its_float32_files_measure_as_the_run(tiny_run, tmp_path):
    manifest = tiny_run.save(tmp_path / "f32")
    remeasured = manifest["remeasured"]
    assert remeasured["run"] == {"acc": tiny_run.acc, "di": tiny_run.di, "deo": tiny_run.deo}
    for name in (MODEL_FILE, SPARSE_FILE):
        got = remeasured["files"][name]
        assert (got["acc"], got["di"], got["deo"]) == (tiny_run.acc, tiny_run.di, tiny_run.deo), name
        assert got["n"] == 96 and not got["deo_moved"]
    assert remeasured["deo_moved"] == [] and remeasured["deo_standard_error"] > 0
    half = tiny_run.save(tmp_path / "f16", float16=True)["remeasured"]["files"][SPARSE_FILE]
    assert half["deo_change"] == pytest.approx(half["deo"] - tiny_run.deo)
    assert manifest["architecture"]["constructor"] == "fapkit.models.SmallCNN"


def test_the_export_command_writes_a_cached_run(tiny_run, tmp_path, capsys):
    run_dir = tiny_run.run_dir
    loaded = load_run(run_dir)
    assert f"faprune-{stage_key('faprune', loaded.config)}" == run_dir.rsplit("/", 1)[-1]  # the settings read back
    assert main(["export", run_dir, str(tmp_path / "out"), "--float16"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == "faprune" and set(printed["files"]) == {MODEL_FILE, MASKS_FILE, SPARSE_FILE}
    assert printed["remeasured"]["files"][MODEL_FILE]["deo"] == tiny_run.deo
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sparse_values"] == "float16" and manifest["run_dir"] == run_dir
    assert main(["export", str(tmp_path), str(tmp_path / "out2")]) == 2
    assert f"{tmp_path} is not a finished run folder" in capsys.readouterr().err


def test_run_with_save_writes_the_files_of_the_run_it_computes(tiny_run, tmp_path, monkeypatch, capsys):
    args, settings = parse(["run", "--preset", "smoke", "--save", str(tmp_path / "out"), "--float16", "--onnx"])
    assert (args.save, args.float16, args.onnx) == (str(tmp_path / "out"), True, True)
    assert not {"save", "float16", "onnx"} & set(settings)  # not settings of the run
    import fapkit.runner

    monkeypatch.setattr(fapkit.runner, "run", lambda *a, **k: tiny_run)
    assert main(["run", "--preset", "smoke", "--save", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out)["deo"] == tiny_run.deo
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["method"] == "faprune"


def test_the_readme_decoder_decodes_as_decode_sparse(exported):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Export and deploy", 1)[1].split("\n## ", 1)[0]
    code = next(block for block in section.split("```python\n")[1:] if "def decode(" in block).split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)
    for float16 in (False, True):
        path = exported["mobilenet_v2", float16][1] / SPARSE_FILE
        ours, theirs = decode_sparse(path), namespace["decode"](str(path))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
