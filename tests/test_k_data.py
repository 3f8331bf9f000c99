"""Sensitive attributes with k groups in the data layer (issue 19, DESIGN.md §3 and §11).

k-valued `FaceTensors`; SynthFaces' multi-valued Age_Group (its binary attributes keep the values
they had before it, recorded below from the code as it stood at commit 002e5b5); intersections;
too-small groups refused by name; the data settings of a run (`DataConfig`) wired end to end to
`fapkit.data.load` / `fapkit.splits.load_splits` on a folder fixture; the CLI and notebook parameters.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fapkit.cli import parse
from fapkit.config import DataConfig, make_config
from fapkit.data import SYNTH_ATTRIBUTES, FaceTensors, FolderDataset, SynthFaces, load
from fapkit.data.base import check_group_sizes, combination_groups, normalise_sensitive, sensitive_columns
from fapkit.data.synth import AGE_GROUPS, BINARY_ATTRIBUTES, MULTI_VALUED, SynthConfig, generate
from fapkit.data.synth.render import render_faces
from fapkit.notebook import check_parameters
from fapkit.splits import dataset_options, load_splits


# ----------------------------------------------------------------------------- FaceTensors
def _images(n: int) -> torch.Tensor:
    return torch.zeros(n, 3, 8, 8, dtype=torch.uint8)


def test_face_tensors_take_k_group_ids_and_names() -> None:
    z = torch.tensor([0, 2, 1, 2, 0, 2])
    y = torch.tensor([1, 0, 1, 1, 0, 0])
    ds = FaceTensors(_images(6), y, z, target="t", sensitive="s", name="toy", group_names=["a", "b", "c", "d"])
    assert ds.n_groups == 4 and ds.group_names == ["a", "b", "c", "d"] and ds.group_counts() == [2, 1, 3, 0]
    rates = ds.label_rates()
    assert set(rates) == {f"p_z{g}" for g in range(4)} | {f"p_y1_given_z{g}" for g in range(4)}
    assert rates["p_z2"] == pytest.approx(0.5) and rates["p_y1_given_z2"] == pytest.approx(1 / 3)
    assert np.isnan(rates["p_y1_given_z3"])  # an absent group
    small = ds.subset(3)
    assert small.group_names == ds.group_names and small.z.tolist() == [0, 2, 1] and small.n_groups == 4
    assert ds[1][2].item() == 2
    unnamed = FaceTensors(_images(6), y, z, target="t", sensitive="s", name="toy")
    assert unnamed.n_groups == 3 and unnamed.names_of_groups() == ["s=0", "s=1", "s=2"]


def test_face_tensors_binary_behaviour_is_unchanged() -> None:
    ds = FaceTensors(_images(4), torch.tensor([1, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), target="t", sensitive="s",
                     name="toy")
    assert ds.group_names is None and ds.n_groups == 2
    assert ds.label_rates() == {"p_z1": 0.75, "p_y1_given_z0": 1.0, "p_y1_given_z1": pytest.approx(2 / 3)}
    assert type(ds.subset(2)) is FaceTensors and ds.subset(2).group_names is None


def test_face_tensors_refuse_bad_group_ids() -> None:
    y = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="z must hold only 0/1 or other non-negative integer group ids.*-1"):
        FaceTensors(_images(3), y, torch.tensor([0, -1, 2]), target="t", sensitive="s", name="toy")
    with pytest.raises(ValueError, match=r"z holds group id 2, but group_names names only 2 group\(s\)"):
        FaceTensors(_images(3), y, torch.tensor([0, 1, 2]), target="t", sensitive="s", name="toy",
                    group_names=["a", "b"])
    with pytest.raises(ValueError, match="y must contain only 0/1"):
        FaceTensors(_images(3), torch.tensor([0, 2, 1]), torch.tensor([0, 1, 1]), target="t", sensitive="s", name="toy")


def test_group_helpers() -> None:
    assert sensitive_columns("Male") == ("Male",) and sensitive_columns("Male|Young") == ("Male", "Young")
    assert normalise_sensitive(["Male"]) == "Male" and normalise_sensitive(["Male", "Young"]) == ("Male", "Young")
    for bad in ([], ["Male", "Male"], ["Male", ""], 3):
        with pytest.raises(ValueError, match="sensitive must"):
            sensitive_columns(bad)  # type: ignore[arg-type]
    codes, names = combination_groups({"a": np.array([1, 0, 1]), "b": np.array([2, 0, 0])}, ("a", "b"),
                                      labels={"b": ("x", "y", "z")})
    assert codes.tolist() == [2, 0, 1] and names == ["a=0|b=x", "a=1|b=x", "a=1|b=z"]
    with pytest.raises(ValueError, match=r"'small' \(1\), 'none' \(0\)"):
        check_group_sizes([5, 1, 0], ["big", "small", "none"], 2, split="test", sensitive="g", dataset="toy")


# ----------------------------------------------------------------------------- SynthFaces: Age_Group
#: np.packbits of each attribute of SynthFaces(split, n=256, size=16, seed, ...) computed with the
#: generator as it stood before Age_Group (GENERATOR_VERSION 6, commit 002e5b5): Age_Group must not
#: move any of them.
BEFORE_AGE_GROUP = {
    ("train", "Attractive", "Male", 0, None, 0.0): {
        "y": "3953ee990de818bed684ec4174272f0790fcc7cf580b40f5432d00b4ec2e4b78",
        "z": "c6a411663424249099700f9958d45090254b28c11e153140e0d02f8151d13457",
        "Male": "c6a411663424249099700f9958d45090254b28c11e153140e0d02f8151d13457",
        "Attractive": "3953ee990de818bed684ec4174272f0790fcc7cf580b40f5432d00b4ec2e4b78",
        "Smiling": "1956e43cb9f2f92806f075548faf595bac766c6885d74462544d1c523b82e259",
        "Young": "7fffce7fadfcff6f67dbffeb9fab3b5ffef7ffaaf3ffefffd867feffbf77efaf",
        "Blond_Hair": "0048808802c2000440000000100c0644c0200000012800010809800004a40300",
        "Wavy_Hair": "3b4b2399809910004089c04681298608c2a4d213e50846760a0f103e888a4a01",
        "Eyeglasses": "040001003200000019000001400004800002080000001000a000018000012001",
        "Heavy_Makeup": "315b6e18ca8b524f6007306685002c29da34d70ee10a06bf0f2bc044ae26cba8",
        "Bangs": "104108009900c226120228020006021801020000000808000482809c68007208",
    },
    ("test", "Smiling", "Young", 3, None, 0.0): {
        "y": "e39cb503a984d898da19a9fc7e5756428ca293b91b11022077d5d26f0a471287",
        "z": "7ff8fbd7bddfef6b72b7ef9f3fbffffef5faffff8dbeeb77b9dfbf60bafbe1e5",
        "Male": "244d044d423a7920c5245272995039546165624156e050822726158b65309a18",
        "Attractive": "1b32a81a8dd57ece2ad9898fca91dc31081edc6da919eb47f3e1a6a8885f4c63",
        "Bangs": "088003700400000008080000000000804c8215204d0000a09000000420800482",
    },
    ("train", "Blond_Hair", "Male", 1, 0.6, 0.1): {
        "y": "632640e352c0fef7a1d92beec9dd3676bcff3c7d8aa58828338cf3cfe53e411c",
        "z": "1e99f99eab9f07021e3b9551b642088b4381c7c875ee5353debbc8603bc9b633",
        "Attractive": "b736c66c16f1f9e5510667ab01f4c3dc3c763a7f0a58fcbc2a44ef37c77440cf",
        "Blond_Hair": "e32440e351c0fcf7a1d56bae49fd7674bc7f3c7582a58c08338c9bdfe53649dc",
        "Heavy_Makeup": "e16602601460708c21c462864929f3442c2c18278a1128ac2004079f4034084c",
    },
}


def _bits(t: torch.Tensor) -> str:
    return np.packbits(t.numpy().astype(np.uint8)).tobytes().hex()


@pytest.mark.parametrize("key", list(BEFORE_AGE_GROUP))
def test_binary_attributes_keep_their_values(key: tuple) -> None:
    split, target, sensitive, seed, correlation, noise = key
    ds = SynthFaces(split, target=target, sensitive=sensitive, size=16, n=256, seed=seed, correlation=correlation,
                    label_noise=noise, cache_dir=None)
    for name, expect in BEFORE_AGE_GROUP[key].items():
        got = ds.y if name == "y" else ds.z if name == "z" else ds.attributes[name]
        assert _bits(got) == expect, name
    # with Age_Group as the sensitive attribute, the binary draws are those of (target, Male)
    if sensitive == "Male" and correlation is None:
        by_age = SynthFaces(split, target=target, sensitive="Age_Group", size=16, n=256, seed=seed, cache_dir=None)
        assert all(torch.equal(by_age.attributes[a], ds.attributes[a]) for a in SYNTH_ATTRIBUTES)
        assert torch.equal(by_age.images, ds.images)


def test_age_group_levels_and_its_local_cue() -> None:
    assert SYNTH_ATTRIBUTES == BINARY_ATTRIBUTES + ("Age_Group",) and MULTI_VALUED["Age_Group"] == AGE_GROUPS
    cfg = SynthConfig(split="valid", size=32, n=400, seed=2)
    data = generate(cfg)
    age = data["attributes"]["Age_Group"]
    assert 3 <= len(AGE_GROUPS) <= 4 and set(age.tolist()) == set(range(len(AGE_GROUPS)))
    young = data["attributes"]["Young"]
    assert float(age[young == 1].float().mean()) < 1.2 < float(age[young == 0].float().mean())  # older when not Young
    # the renderer without the cue is the renderer before Age_Group: only the eye corners of codes > 0 differ
    from fapkit.data.synth.dataset import _SPLIT_CODE, STREAM_VERSION
    from fapkit.data.synth.render import sample_style

    ss = np.random.SeedSequence([cfg.seed, _SPLIT_CODE[cfg.split], STREAM_VERSION])
    attr_rng, style_rng, noise_rng, _, _ = (np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(5))
    attrs = {k: v.numpy() for k, v in data["attributes"].items()}
    without = render_faces(sample_style(attrs, style_rng), cfg.size, noise_rng)
    same = (without == data["images"]).flatten(1).all(dim=1)
    assert bool(same[age == 0].all()) and not bool(same[age > 0].any())
    changed = (without != data["images"]).any(dim=1).flatten(1).float().mean(dim=1)
    assert float(changed[age > 0].max()) < 0.03  # under 3 % of the pixels: a small, local cue
    assert float(changed[age == 3].mean()) > float(changed[age == 1].mean())  # more lines, more pixels


def test_age_group_as_sensitive_and_in_intersections() -> None:
    ds = SynthFaces("valid", sensitive="Age_Group", size=8, n=300, cache_dir=None)
    assert ds.sensitive == "Age_Group" and ds.n_groups == 4
    assert ds.group_names == ["Age_Group=0-19", "Age_Group=20-39", "Age_Group=40-59", "Age_Group=60+"]
    assert torch.equal(ds.z, ds.attributes["Age_Group"])
    both = SynthFaces("valid", sensitive=("Male", "Age_Group"), size=8, n=300, cache_dir=None)
    assert both.sensitive == "Male|Age_Group" and both.n_groups == 8 and both.group_names[5] == "Male=1|Age_Group=20-39"
    assert both.z.tolist() == (4 * both.attributes["Male"] + both.attributes["Age_Group"]).tolist()


def test_synth_intersection_groups() -> None:
    ds = load("synth", split="test", sensitive=("Male", "Young"), size=8, n=200, cache_dir=None)
    assert ds.group_names == ["Male=0|Young=0", "Male=0|Young=1", "Male=1|Young=0", "Male=1|Young=1"]
    assert ds.z.tolist() == (2 * ds.attributes["Male"] + ds.attributes["Young"]).tolist()
    assert torch.equal(ds.y, SynthFaces("test", size=8, n=200, cache_dir=None).y)  # same draws as sensitive=Male
    for spelling in ("Male|Young", ["Male", "Young"]):
        same = load("synth", split="test", sensitive=spelling, size=8, n=200, cache_dir=None)
        assert torch.equal(same.z, ds.z) and same.group_names == ds.group_names
    # every split numbers the groups alike, even when a combination is missing from a split
    tiny = SynthFaces("train", sensitive=("Young", "Age_Group"), size=8, n=40, cache_dir=None)
    assert tiny.n_groups == 8 and min(tiny.group_counts()) == 0
    # correlation acts on the first binary attribute of an intersection
    corr = SynthFaces("train", sensitive=("Male", "Age_Group"), size=8, n=3000, correlation=1.0, cache_dir=None)
    assert torch.equal(corr.y, 1 - corr.attributes["Male"])


def test_synth_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"target 'Age_Group' has 4 levels .*a target must be binary"):
        SynthFaces(target="Age_Group", sensitive="Male", cache_dir=None)
    with pytest.raises(ValueError, match="correlation sets P.*has none"):
        SynthFaces(sensitive="Age_Group", correlation=0.5, cache_dir=None)
    with pytest.raises(ValueError, match="must differ"):
        SynthFaces(target="Young", sensitive=("Male", "Young"), cache_dir=None)
    with pytest.raises(ValueError, match="unknown sensitive attribute 'Age'"):
        SynthFaces(sensitive=("Male", "Age"), cache_dir=None)
    # one name given as a list is that name: one cache file
    a = SynthFaces("valid", sensitive=["Male"], size=8, n=4, cache_dir=tmp_path)
    assert a.cache_path == SynthFaces("valid", sensitive="Male", size=8, n=4, cache_dir=tmp_path).cache_path


def test_too_small_synth_groups_are_refused_by_name() -> None:
    ok = SynthFaces("train", sensitive=("Young", "Age_Group"), size=8, n=60, cache_dir=None)
    counts = dict(zip(ok.group_names, ok.group_counts()))
    small = {name: c for name, c in counts.items() if c < 3}
    assert small
    with pytest.raises(ValueError) as err:
        load("synth", split="train", sensitive=("Young", "Age_Group"), size=8, n=60, cache_dir=None, min_group_size=3)
    msg = str(err.value)
    assert "split 'train'" in msg and "'Young|Age_Group'" in msg and "min_group_size=3" in msg
    assert all(f"'{name}' ({c})" in msg for name, c in small.items())
    assert not any(f"'{name}' (" in msg for name in counts if name not in small)


# ----------------------------------------------------------------------------- a folder, from a DataConfig
def _write_faces(root: Path, n: int = 96) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        name = f"img/{i:03d}.png"
        (root / "img").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 10), (5 * i % 255, 80, 200 - 3 * i)).save(root / name)
        rows.append({"path": name, "smiling": ("no", "yes")[i % 2], "gender": ("F", "M")[i // 2 % 2],
                     "age": ("old", "young", "mid")[i % 3]})
    header = ["path", "smiling", "gender", "age"]
    (root / "meta").mkdir(exist_ok=True)
    lines = [",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]
    (root / "meta" / "table.csv").write_text("\n".join(lines) + "\n")
    return rows


def test_data_config_drives_a_folder_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    rows = {str(r["path"]): r for r in _write_faces(root)}
    cfg = make_config("normal", preset="smoke", dataset="folder", root=str(root), labels=str(root / "meta/table.csv"),
                      image_column="path", target="smiling", sensitive=["gender", "age"], positive="no",
                      split_fractions=[0.5, 0.25, 0.25], data_seed=4, min_group_size=1, n_train=None, n_valid=None,
                      n_test=None, size=32)
    d = cfg.data
    assert d.sensitive == ("gender", "age") and d.split_fractions == (0.5, 0.25, 0.25)
    assert dataset_options(d) == {"seed": 4, "labels": str(root / "meta/table.csv"), "image_column": "path",
                                  "fractions": (0.5, 0.25, 0.25), "positive": "no"}
    splits = load_splits(d)
    seen = []
    for split, ds in splits.items():
        direct = FolderDataset(root, split, "smiling", ("gender", "age"), size=32, labels=root / "meta/table.csv",
                               image_column="path", positive="no", fractions=(0.5, 0.25, 0.25), seed=4)
        assert isinstance(ds, FolderDataset) and ds.files == direct.files and torch.equal(ds.z, direct.z)
        assert ds.sensitive == "gender|age" and ds.n_groups == 6 and ds.group_names[0] == "F|mid"
        assert ds.y.tolist() == [int(rows[f]["smiling"] == "no") for f in ds.files]  # positive="no" is 1
        assert ds.images.shape[-1] == 32
        seen += ds.files
    assert sorted(seen) == sorted(rows) and len(splits["train"]) == 48
    # the same through fapkit.data.load, the split seed moving the partition
    other = load("folder", split="train", root=root, target="smiling", sensitive=("gender", "age"), size=32,
                 **{**dataset_options(d), "seed": 5})
    assert other.files != splits["train"].files
    # a split cut to n_train is checked again: with 6 groups, 4 images cannot hold every group
    cut = make_config("normal", preset="smoke", data=d, n_train=4)
    with pytest.raises(ValueError, match=r"split 'train' has \d group\(s\) of 'gender\|age' with fewer than "
                                         r"min_group_size=1"):
        load_splits(cut.data)
    assert len(load_splits(make_config("normal", preset="smoke", data=d, n_train=4, min_group_size=0).data)["train"]) == 4


def test_data_config_validation_messages() -> None:
    for settings, expect in _cases():
        with pytest.raises(ValueError, match=expect):
            make_config("normal", preset="smoke", **dict(settings))
    with pytest.raises(TypeError, match="image_column must be str"):
        make_config("normal", preset="smoke", dataset="folder", root="r", image_column=3)
    assert make_config("normal", preset="smoke", sensitive="Male|Age_Group").data.sensitive == ("Male", "Age_Group")
    assert make_config("normal", preset="smoke", sensitive=["Young"]).data.sensitive == "Young"
    assert DataConfig(name="folder", sensitive="a|b").sensitive == "a|b"  # a folder's column may hold a "|"


def _cases() -> list[tuple[tuple, str]]:
    return [
        ((("dataset", "folder"),), "dataset 'folder' needs root"),
        ((("target", "Handsome"),), "unknown target attribute 'Handsome' for dataset 'synth'; valid names: Age_Group"),
        ((("sensitive", ("Male", "Age")),), "unknown sensitive attribute 'Age' for dataset 'synth'"),
        ((("dataset", "celeba"), ("sensitive", ("Male", "Age_Group"))),
         "unknown sensitive attribute 'Age_Group' for dataset 'celeba'"),
        ((("dataset", "utkface"),), "unknown target attribute 'Attractive' for dataset 'utkface'; valid names: age, gender"),
        ((("target", "Age_Group"),), "target 'Age_Group' has 4 levels"),
        ((("sensitive", "Age_Group"), ("correlation", 0.5)), "correlation sets P"),
        ((("target", "Young"), ("sensitive", ("Male", "Young"))), "target and sensitive attribute must differ"),
        ((("labels", "x.csv"),), "labels applies to dataset 'folder', not 'synth'"),
        ((("split_fractions", (0.8, 0.1, 0.1)),), "split_fractions applies to dataset 'folder' and 'utkface', not"),
        ((("dataset", "fairface"), ("target", "gender"), ("sensitive", "race"), ("split_fractions", (0.8, 0.1, 0.1))),
         "not 'fairface'"),
        ((("positive", "yes"),), "positive applies to dataset 'folder' and 'utkface' and 'fairface'"),
        ((("dataset", "folder"), ("root", "r"), ("split_fractions", (0.5, 0.6, 0.1))), "fractions must be three numbers"),
        ((("min_group_size", -1),), "min_group_size must be an int >= 0"),
        ((("sensitive", ("Male", "Male")),), "sensitive must name one attribute or several different ones"),
    ]


# ----------------------------------------------------------------------------- CLI and notebook parameters
def test_cli_sensitive_takes_several_names() -> None:
    _, one = parse(["run", "--method", "normal", "--sensitive", "Young"])
    assert one["sensitive"] == "Young"
    args, many = parse(["run", "--sensitive", "Male", "Young", "--dataset", "folder", "--root", "r", "--labels", "t.csv",
                        "--image-column", "path", "--positive", "yes", "--split-fractions", "0.8,0.1,0.1",
                        "--min-group-size", "5", "--data-seed", "3"])
    assert many == {"sensitive": ("Male", "Young"), "dataset": "folder", "root": "r", "labels": "t.csv",
                    "image_column": "path", "positive": "yes", "split_fractions": (0.8, 0.1, 0.1),
                    "min_group_size": 5, "data_seed": 3}
    cfg = make_config(args.method, preset="smoke", **many)
    assert cfg.data.sensitive == ("Male", "Young") and cfg.data.min_group_size == 5
    _, axes = parse(["sweep", "--sensitive", "Male", "Male|Young", "--seed", "0", "1"])
    assert axes == {"sensitive": ["Male", "Male|Young"], "seed": [0, 1]}  # a sweep: one run per value
    assert make_config("normal", preset="smoke", sensitive=axes["sensitive"][1]).data.sensitive == ("Male", "Young")
    _, none = parse(["run"])
    assert "sensitive" not in none
    with pytest.raises(SystemExit):
        parse(["run", "--split-fractions", "0.8;0.2"])


def test_notebook_sensitive_may_be_a_list() -> None:
    assert check_parameters({"SENSITIVE": "Male"})["SENSITIVE"] == "Male"
    assert check_parameters({"SENSITIVE": ["Male", "Young"]})["SENSITIVE"] == ["Male", "Young"]
    with pytest.raises(TypeError, match=r"SENSITIVE = \['Male', 1\] holds 1 of type int; expected a list of str"):
        check_parameters({"SENSITIVE": ["Male", 1]})
    with pytest.raises(TypeError, match="SENSITIVE = 3 has type int; expected str or list"):
        check_parameters({"SENSITIVE": 3})
    with pytest.raises(ValueError, match="SENSITIVE is an empty list"):
        check_parameters({"SENSITIVE": []})


def test_a_run_with_a_four_group_attribute_reports_every_group_by_name(tmp_path: Path) -> None:
    import fapkit

    settings = dict(preset="smoke", size=16, n_train=256, n_valid=128, n_test=128, pretrain_epochs=1, epochs=1,
                    sensitive="Age_Group", runs_dir=tmp_path)
    result = fapkit.run("faprune", **settings)
    assert sorted(result.metrics["groups"]) == [0, 1, 2, 3]
    assert result.metrics["group_names"] == [f"Age_Group={g}" for g in AGE_GROUPS]
    assert fapkit.run("faprune", **settings).metrics["group_names"] == result.metrics["group_names"]  # from the cache
    assert np.isfinite(result.deo) and 0.0 <= result.di <= 1.0
    assert len(result.metrics["group_acc_change"]) == 4  # against the 4-group dense parent
    assert any(k.startswith("train_adv_deo") for k in result.history[-1])  # the k-way heads played


def test_every_registered_method_runs_on_synthfaces_with_a_k_group_attribute(tmp_path: Path) -> None:
    import fapkit
    from fapkit.registry import method_names

    settings = dict(preset="smoke", size=16, n_train=256, n_valid=128, n_test=128, pretrain_epochs=1, epochs=1,
                    scratch_epochs=1, sensitive="Age_Group", runs_dir=tmp_path)
    for method in method_names():
        result = fapkit.run(method, **settings)
        assert np.isfinite(result.acc) and np.isfinite(result.deo), method
        assert sorted(result.metrics["groups"]) == [0, 1, 2, 3], method
        assert all(np.isfinite(g["selection_rate"]) for g in result.metrics["groups"].values()), method
