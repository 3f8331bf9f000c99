"""Image folders with an attribute table (any CSV folder, UTKFace, FairFace) on tiny fixture folders."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

import fapkit.data.folder as folder_module
from fapkit.data import DATASETS, FaceTensors, FairFace, FolderDataset, UTKFace, load
from fapkit.data.folder import FAIRFACE_AGE_BINS, parse_utkface_name, read_label_csv, seeded_split

SPLIT_NAMES = ("train", "valid", "test")


# ----------------------------------------------------------------------------- fixtures
def _colour(i: int) -> tuple[int, int, int]:
    return (20 + 37 * i % 230, 60 + 11 * i % 150, 220 - 23 * i % 200)


def _image(path: Path, colour: tuple[int, int, int], wh: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", wh, colour).save(path, quality=95)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")


N_FOLDER = 36


def _folder_rows() -> list[dict[str, object]]:
    """Known attributes per image: smiling yes/no, gender Female/Male, band 0/1/2 (ints), age young/old."""
    rows = []
    for i in range(N_FOLDER):
        sub = "png" if i % 3 == 0 else "jpg"
        rows.append({
            "file": f"{sub}/img_{i:03d}.{sub}",
            "smiling": "yes" if i % 2 == 0 else "no",
            "gender": "Male" if i % 3 == 1 else "Female",
            "band": (7, 3, 9)[i % 3] if i % 4 else 3,
            "age": "young" if i % 5 < 3 else "old",
            "split": ("train", "train", "val", "test", "valid", "train", "test")[i % 7],
        })
    return rows


def _write_folder(root: Path, *, split_column: bool = False, shuffle: bool = False) -> Path:
    rows = _folder_rows()
    for i, r in enumerate(rows):
        _image(root / str(r["file"]), _colour(i))
    header = ["file", "smiling", "gender", "band", "age"] + (["split"] if split_column else [])
    order = list(range(len(rows)))
    if shuffle:
        random.Random(1).shuffle(order)
    _write_csv(root / "labels.csv", header, [[rows[i][h] for h in header] for i in order])
    return root


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    return _write_folder(tmp_path / "faces")


def _by_file() -> dict[str, tuple[int, dict[str, object]]]:
    return {str(r["file"]): (i, r) for i, r in enumerate(_folder_rows())}


UTK_ROWS = [(age, gender, race) for age, gender, race in
            [(1 + 7 * i % 80, i % 2, i % 5) for i in range(30)]]


def _utk_name(k: int, age: int, gender: int, race: int) -> str:
    stamp = f"20170116{174525125 + k:09d}"
    return f"{age}_{gender}_{race}_{stamp}.jpg" + (".chip.jpg" if k % 2 else "")


def _write_utk(folder: Path) -> list[str]:
    names = [_utk_name(k, *r) for k, r in enumerate(UTK_ROWS)]
    for k, name in enumerate(names):
        _image(folder / name, _colour(k), (10, 10))
    (folder / "landmarks.txt").write_text("not an image, ignored\n")
    return names


@pytest.fixture
def utk_root(tmp_path: Path) -> Path:
    root = tmp_path / "utk"
    _write_utk(root)
    return root


FF_RACES = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")


def _ff_rows(part: str, n: int) -> list[list[object]]:
    offset = 0 if part == "train" else 100
    return [[f"{part}/{k + 1}.jpg", FAIRFACE_AGE_BINS[(k + offset) % 9], ("Male", "Female")[(k + offset) % 2],
             FF_RACES[(k + offset) % 7], ("True", "False")[k % 3 == 0]] for k in range(n)]


def _write_fairface(root: Path, n_train: int = 40, n_val: int = 14) -> None:
    for part, n in (("train", n_train), ("val", n_val)):
        rows = _ff_rows(part, n)
        for k, row in enumerate(rows):
            _image(root / str(row[0]), _colour(k + (0 if part == "train" else 50)), (12, 12))
        _write_csv(root / f"fairface_label_{part}.csv", ["file", "age", "gender", "race", "service_test"], rows)


@pytest.fixture
def ff_root(tmp_path: Path) -> Path:
    root = tmp_path / "fairface"
    _write_fairface(root)
    return root


# ----------------------------------------------------------------------------- FolderDataset
def test_folder_labels_groups_and_images(folder_root: Path) -> None:
    rows = _by_file()
    seen: list[str] = []
    for split in SPLIT_NAMES:
        ds = FolderDataset(folder_root, split, "smiling", "gender", size=8)
        assert isinstance(ds, FaceTensors) and ds.name == "folder" and ds.target == "smiling" and ds.sensitive == "gender"
        assert ds.images.shape == (len(ds), 3, 8, 8) and ds.images.dtype == torch.uint8
        assert ds.group_names == ["Female", "Male"] and ds.n_groups == 2  # sorted order
        assert ds.target_values == ("no", "yes")  # "yes" -> 1
        for row, f in enumerate(ds.files):
            i, r = rows[f]
            assert ds.y[row].item() == int(r["smiling"] == "yes")
            assert ds.z[row].item() == ds.group_names.index(r["gender"])
            assert ds.columns["band"][row] == r["band"] and ds.columns["age"][row] == r["age"]
            assert ds.attributes["age"][row].item() == int(r["age"] == "young")  # "old" < "young"
            mean = ds.images[row].float().mean(dim=(1, 2))
            assert torch.allclose(mean, torch.tensor(_colour(i), dtype=torch.float32), atol=6)  # png and jpg
        assert set(ds.attributes) == {"smiling", "gender", "age"}  # the two-valued columns
        x, y, z = ds[0]
        assert x.dtype == torch.float32 and x.shape == (3, 8, 8) and y.dtype == z.dtype == torch.int64
        seen += ds.files
    assert sorted(seen) == sorted(rows)

    flipped = FolderDataset(folder_root, "train", "smiling", "gender", size=8, positive="no")
    assert flipped.target_values == ("yes", "no")
    assert flipped.y.tolist() == [int(rows[f][1]["smiling"] == "no") for f in flipped.files]


def test_folder_integer_groups_and_k_valued_codes(folder_root: Path) -> None:
    ds = FolderDataset(folder_root, "train", "gender", "band", size=8, positive="Female")
    rows = _by_file()
    assert ds.group_names == [3, 7, 9]  # ints sort numerically and keep their type
    assert ds.z.tolist() == [[3, 7, 9].index(rows[f][1]["band"]) for f in ds.files]
    assert set(ds.z.tolist()) == {0, 1, 2} and ds.y.tolist() == [int(rows[f][1]["gender"] == "Female") for f in ds.files]
    rates = ds.label_rates()
    assert set(rates) == {f"p_z{g}" for g in range(3)} | {f"p_y1_given_z{g}" for g in range(3)}
    assert sum(rates[f"p_z{g}"] for g in range(3)) == pytest.approx(1.0)
    small = ds.subset(5)
    assert isinstance(small, FolderDataset) and len(small) == 5 and small.files == ds.files[:5]
    assert torch.equal(small.z, ds.z[:5]) and small.group_names == ds.group_names and len(small.columns["band"]) == 5


def test_folder_intersection_groups(folder_root: Path) -> None:
    rows = _by_file()
    for sensitive in (("gender", "age"), ["gender", "age"], "gender|age"):
        ds = FolderDataset(folder_root, "train", "smiling", sensitive, size=8)
        assert ds.group_names == ["Female|old", "Female|young", "Male|old", "Male|young"]
        assert ds.sensitive == "gender|age" and ds.sensitive_columns == ("gender", "age")
        assert ds.z.tolist() == [ds.group_names.index(f"{rows[f][1]['gender']}|{rows[f][1]['age']}") for f in ds.files]
    ints = FolderDataset(folder_root, "train", "smiling", ("band", "gender"), size=8, min_group_size=0)
    combos = sorted({(r["band"], r["gender"]) for r in _folder_rows()})  # by (int, str) tuples, over the whole table
    assert ints.group_names == [f"{b}|{g}" for b, g in combos] and ints.group_names[0] == "3|Female"


def test_folder_split_column(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "with_split", split_column=True)
    rows = _folder_rows()
    for split in SPLIT_NAMES:
        ds = FolderDataset(root, split, "smiling", "gender", size=8)
        expect = [str(r["file"]) for r in rows if {"val": "valid"}.get(str(r["split"]), r["split"]) == split]
        assert ds.files == expect  # val and valid both mean valid; table order kept
    with pytest.raises(ValueError, match="'split' column, which fixes the splits.*split_column=None"):
        FolderDataset(root, "train", "smiling", "gender", size=8, fractions=(0.5, 0.25, 0.25))
    seeded = FolderDataset(root, "train", "smiling", "gender", size=8, split_column=None, fractions=(0.5, 0.25, 0.25))
    assert len(seeded) == 18 and "split" in seeded.columns  # then it is an ordinary column


def test_folder_seeded_fractions(folder_root: Path, tmp_path: Path) -> None:
    def files(root: Path, seed: int, fractions=None) -> dict[str, list[str]]:
        return {s: FolderDataset(root, s, "smiling", "gender", size=8, seed=seed, fractions=fractions).files
                for s in SPLIT_NAMES}

    first = files(folder_root, 0)
    assert [len(first[s]) for s in SPLIT_NAMES] == [25, 6, 5]  # round(0.7 * 36), round(0.85 * 36) - 25, rest
    assert sorted(sum(first.values(), [])) == sorted(_by_file())  # disjoint and covering
    assert first == files(folder_root, 0)  # deterministic
    assert files(folder_root, 1) != first
    shuffled = _write_folder(tmp_path / "shuffled", shuffle=True)  # row order of the CSV does not matter
    assert {s: sorted(f) for s, f in files(shuffled, 0).items()} == {s: sorted(f) for s, f in first.items()}
    halves = files(folder_root, 0, (0.5, 0.25, 0.25))
    assert [len(halves[s]) for s in SPLIT_NAMES] == [18, 9, 9]
    codes = seeded_split([f"{k}.png" for k in range(11)], (0.8, 0.2, 0.0), 3)
    assert codes.tolist().count(2) == 0 and codes.tolist().count(0) == 9  # no test share: no test rows


def test_folder_cache(folder_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = folder_module.decode_images
    monkeypatch.setattr(folder_module, "decode_images", lambda paths, *a, **k: calls.append(len(paths)) or real(paths, *a, **k))
    first = FolderDataset(folder_root, "train", "smiling", "gender", size=8)
    assert not first.loaded_from_cache and calls == [len(first)]
    assert first.cache_path is not None and first.cache_path.is_file()
    assert first.cache_path.parent == folder_root / ".fapkit_cache"
    # later loads (other attributes, same images) read the cache, even once the images are gone
    shutil.rmtree(folder_root / "jpg")
    again = FolderDataset(folder_root, "train", "age", ("gender", "band"), size=8, min_group_size=0)
    assert again.loaded_from_cache and torch.equal(again.images, first.images) and calls == [len(first)]
    with pytest.raises(FileNotFoundError, match="jpg/img_"):
        FolderDataset(folder_root, "train", "smiling", "gender", size=12)  # new size: needs decoding
    uncached = FolderDataset(folder_root / "png", "train", "smiling", "gender", size=8, cache=False,
                             labels=_png_only_labels(folder_root))
    assert uncached.cache_path is None and not uncached.loaded_from_cache


def _png_only_labels(root: Path) -> Path:
    path = root / "png_labels.csv"
    rows = [r for r in _folder_rows() if str(r["file"]).startswith("png/")]
    _write_csv(path, ["file", "smiling", "gender"], [[str(r["file"])[4:], r["smiling"], r["gender"]] for r in rows])
    return path


def test_folder_missing_files_and_columns(folder_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere.* not found"):
        FolderDataset(tmp_path / "nowhere", "train", "smiling", "gender")
    with pytest.raises(FileNotFoundError) as err:
        FolderDataset(folder_root, "train", "smiling", "gender", labels=folder_root / "attrs.csv")
    assert "attrs.csv" in str(err.value) and "file,<target>,<sensitive>[,split]" in str(err.value)

    train = FolderDataset(folder_root, "train", "smiling", "gender", size=8, cache=False).files
    for f in train[:3]:
        (folder_root / f).unlink()
    with pytest.raises(FileNotFoundError) as err:
        FolderDataset(folder_root, "train", "smiling", "gender", size=8, cache=False)
    msg = str(err.value)
    assert f"3 of {len(train)} images of split 'train'" in msg and all(f in msg for f in train[:3])
    assert "labels.csv" in msg

    with pytest.raises(ValueError) as err:
        FolderDataset(folder_root, "train", "smile", "gender")
    msg = str(err.value)
    assert "unknown target column 'smile'" in msg and "['smiling', 'gender', 'band', 'age']" in msg
    with pytest.raises(ValueError, match="unknown sensitive column 'race'.*available columns"):
        FolderDataset(folder_root, "train", "smiling", ("gender", "race"))
    with pytest.raises(ValueError, match=r"needs target= .*available columns: \['smiling'"):
        FolderDataset(folder_root, "train")
    with pytest.raises(ValueError, match="must differ, 'gender' is both"):
        FolderDataset(folder_root, "train", "gender", ("age", "gender"))
    with pytest.raises(ValueError, match=r"positive='maybe' is not a value .*\['no', 'yes'\]"):
        FolderDataset(folder_root, "train", "smiling", "gender", positive="maybe")


@pytest.mark.parametrize("text, expect", [
    ("", "is empty; expected a header line"),
    ("\n\n", "is empty; expected a header line"),
    ("file,smiling,gender\n", "has a header but no rows"),
    ("a.jpg,yes,Male\nb.jpg,no,Female\n", "looks like a data row, not a header"),
    ("name,smiling,gender\na.jpg,yes,Male\n", "no column 'file'.*pass image_column="),
    ("file,smiling,gender\na.jpg,yes\n", "line 2: expected 3 comma-separated fields .*got 2"),
    ("file,smiling,smiling\na.jpg,yes,no\n", "empty or repeated column name"),
    ("file,smiling,gender\na.jpg,yes,Male\na.jpg,no,Female\n", "line 3: image 'a.jpg' is listed twice"),
    ("file,smiling,gender\n,yes,Male\n", "line 2: the 'file' cell is empty"),
])
def test_malformed_csv(tmp_path: Path, text: str, expect: str) -> None:
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(ValueError, match=expect) as err:
        FolderDataset(tmp_path, "train", "smiling", "gender", size=8)
    assert "labels.csv" in str(err.value)


def test_csv_values_and_refused_tables(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("\ufeffpath , y , g\n a.jpg , 1 , 10\nb.jpg,0,2\n\nc.jpg,1,\n")
    table = read_label_csv(tmp_path / "t.csv", "path")  # BOM, spaces and blank lines tolerated
    assert table.files == ["a.jpg", "b.jpg", "c.jpg"] and table.columns == {"y": [1, 0, 1], "g": [10, 2, None]}
    assert table.distinct("g") == [2, 10]  # numeric, not string, order

    for i in range(4):
        _image(tmp_path / f"{i}.png", _colour(i))
    cases = {
        "file,y,g,split\n0.png,1,a,train\n1.png,0,b,training\n": "holds 'training' for '1.png'; expected one of",
        "file,y,g\n0.png,1,a\n1.png,0,\n2.png,1,\n": r"column 'g' is empty for 2 image\(s\) \(first: \['1.png', '2.png'\]\)",
        "file,y,g\n0.png,a,x\n1.png,b,y\n2.png,c,x\n": r"column 'y' of FolderDataset has 3 distinct value\(s\) \['a', 'b', 'c'\]",
        "file,y,g\n0.png,1,x\n1.png,1,y\n": r"has 1 distinct value\(s\) \[1\].*exactly two values",
    }
    for text, expect in cases.items():
        (tmp_path / "labels.csv").write_text(text)
        with pytest.raises(ValueError, match=expect):
            FolderDataset(tmp_path, "train", "y", "g", size=8, min_group_size=0)


def test_too_small_groups_are_refused(folder_root: Path) -> None:
    with pytest.raises(ValueError) as err:
        FolderDataset(folder_root, "test", "smiling", ("gender", "age"), size=8, min_group_size=2)
    msg = str(err.value)
    counts = {}
    ok = FolderDataset(folder_root, "test", "smiling", ("gender", "age"), size=8, min_group_size=0)
    for g, name in enumerate(ok.group_names):
        counts[name] = int((ok.z == g).sum())
    small = {n: c for n, c in counts.items() if c < 2}
    assert small and "min_group_size=2" in msg and "split 'test'" in msg and "'gender|age'" in msg
    assert all(f"'{n}' ({c})" in msg for n, c in small.items())
    assert not any(f"'{n}' (" in msg for n in counts if n not in small)
    with pytest.raises(ValueError, match="min_group_size must be an int >= 0"):
        FolderDataset(folder_root, "test", "smiling", "gender", min_group_size=-1)
    with pytest.raises(ValueError, match="fractions must be three numbers"):
        FolderDataset(folder_root, "test", "smiling", "gender", fractions=(0.5, 0.6, 0.1))


@pytest.mark.parametrize("dataset", [FolderDataset, UTKFace, FairFace])
def test_bad_decoding_arguments_are_refused_before_any_file_is_read(dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"crop must be in \(0, 1\]"):
        dataset(tmp_path / "absent", crop=0)
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        dataset(tmp_path / "absent", size=4)
    with pytest.raises(ValueError, match="'valid'"):
        dataset(tmp_path / "absent", split="val")


# ----------------------------------------------------------------------------- UTKFace
def test_utkface_name_parsing() -> None:
    assert parse_utkface_name("25_0_2_20170116174525125.jpg") == (25, 0, 2)
    assert parse_utkface_name("100_1_4_20170112213500903.jpg.chip.jpg") == (100, 1, 4)
    for bad in ("39_1_20170116174525125.jpg.chip.jpg", "53__0_20170116184028385.jpg", "25_2_0_2017.jpg",
                "25_0_5_2017.jpg", "25_0_2_2017.txt", "face.jpg"):
        assert parse_utkface_name(bad) is None, bad


def test_utkface_attributes_groups_and_splits(utk_root: Path) -> None:
    parts = {s: UTKFace(utk_root, s, "gender", "race", size=8, min_group_size=0) for s in SPLIT_NAMES}
    expect = {_utk_name(k, *r): r for k, r in enumerate(UTK_ROWS)}
    assert sorted(sum((ds.files for ds in parts.values()), [])) == sorted(expect)  # the .txt file is ignored
    assert [len(parts[s]) for s in SPLIT_NAMES] == [21, 5, 4]  # 21 = round(0.7 * 30), 26 = round(0.85 * 30)
    for ds in parts.values():
        assert ds.name == "utkface" and ds.images.shape == (len(ds), 3, 8, 8)
        assert ds.group_names == [0, 1, 2, 3, 4]
        for row, f in enumerate(ds.files):
            age, gender, race = expect[f]
            assert ds.y[row].item() == gender  # 1 = female
            assert ds.z[row].item() == race
            assert ds.columns["age"][row] == age and ds.attributes["young"][row].item() == int(age < 30)
    young = UTKFace(utk_root, "train", "young", ("gender", "race"), size=8, min_group_size=0)
    assert young.group_names[:2] == ["0|0", "0|1"] and young.sensitive == "gender|race"
    assert young.y.tolist() == [int(expect[f][0] < 30) for f in young.files]
    other_seed = UTKFace(utk_root, "train", "gender", "race", size=8, seed=4, min_group_size=0).files
    assert sorted(other_seed) != sorted(parts["train"].files)


def test_utkface_refusals_and_layouts(utk_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        UTKFace(utk_root, "train", "age", "race")
    msg = str(err.value)
    assert "target column 'age' of UTKFace has" in msg and "exactly two values" in msg and "['gender', 'young']" in msg
    with pytest.raises(ValueError, match="unknown sensitive column 'ethnicity'.*'age', 'gender', 'race', 'young'"):
        UTKFace(utk_root, "train", "gender", "ethnicity")
    with pytest.raises(ValueError, match=r"split 'valid' has \d group\(s\) of 'race' with fewer than min_group_size=1 "
                                         r"images: .*\(0\)"):
        UTKFace(utk_root, "valid", "gender", "race", size=8)  # 4 images cannot hold 5 races

    bad = ["39_1_20170116174525125.jpg.chip.jpg", "61_1_20170109142408075.jpg.chip.jpg", "face.png"]
    for k, name in enumerate(bad):
        _image(utk_root / name, _colour(k))
    with pytest.raises(ValueError) as err:
        UTKFace(utk_root, "train", size=8, min_group_size=0)
    msg = str(err.value)
    assert "3 file name(s)" in msg and all(n in msg for n in bad) and "skip_bad_names=True" in msg
    skipping = UTKFace(utk_root, "train", size=8, skip_bad_names=True, cache=False, min_group_size=0)
    assert skipping.skipped == sorted(bad) and not set(bad) & set(skipping.files)

    nested = tmp_path / "nested"
    names = _write_utk(nested / "UTKFace")  # root/UTKFace/*.jpg, as the archive unpacks
    ds = UTKFace(nested, "test", "young", "gender", size=8)
    assert set(ds.files) <= set(names) and ds.cache_path.parent == nested / ".fapkit_cache"
    assert UTKFace(nested, "test", "young", "gender", size=8).loaded_from_cache

    with pytest.raises(FileNotFoundError, match="susanqq.github.io/UTKFace"):
        UTKFace(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        UTKFace(tmp_path / "empty")


# ----------------------------------------------------------------------------- FairFace
def test_fairface_splits_and_attributes(ff_root: Path) -> None:
    parts = {s: FairFace(ff_root, s, "gender", "service_test", size=8) for s in SPLIT_NAMES}
    train_files = [str(r[0]) for r in _ff_rows("train", 40)]
    assert parts["test"].files == [str(r[0]) for r in _ff_rows("val", 14)]  # FairFace's val set
    assert sorted(parts["train"].files + parts["valid"].files) == sorted(train_files)
    assert len(parts["valid"]) == 4 and not set(parts["train"].files) & set(parts["valid"].files)  # 10 % of train
    rows = {str(r[0]): r for part, n in (("train", 40), ("val", 14)) for r in _ff_rows(part, n)}
    for ds in parts.values():
        assert ds.name == "fairface" and ds.images.shape == (len(ds), 3, 8, 8)
        assert ds.target_values == ("Female", "Male") and ds.group_names == ["False", "True"]
        assert ds.y.tolist() == [int(rows[f][2] == "Male") for f in ds.files]
        assert ds.columns["race"] == [rows[f][3] for f in ds.files]
        assert ds.attributes["young"].tolist() == [int(FAIRFACE_AGE_BINS.index(str(rows[f][1])) < 4) for f in ds.files]

    by_age = FairFace(ff_root, "train", "gender", "age", size=8, min_group_size=0)
    assert by_age.group_names == list(FAIRFACE_AGE_BINS)  # ordered by age, not alphabetically
    assert by_age.z.tolist() == [FAIRFACE_AGE_BINS.index(str(rows[f][1])) for f in by_age.files]
    by_race = FairFace(ff_root, "test", "gender", "race", size=8)
    assert by_race.group_names == sorted(FF_RACES) and by_race.n_groups == 7
    bigger = FairFace(ff_root, "valid", "gender", "service_test", size=8, valid_fraction=0.25, seed=2)
    assert len(bigger) == 10 and bigger.files != parts["valid"].files


def test_fairface_refusals(ff_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split 'valid' has \d group\(s\) of 'race'"):
        FairFace(ff_root, "valid", "gender", "race", size=8)  # 4 valid images cannot hold 7 races
    with pytest.raises(ValueError, match="target column 'race' of FairFace has 7 distinct"):
        FairFace(ff_root, "train", "race", "gender", size=8)
    with pytest.raises(ValueError, match=r"valid_fraction must be in \[0, 1\)"):
        FairFace(ff_root, valid_fraction=1.0)
    with pytest.raises(FileNotFoundError) as err:
        FairFace(tmp_path / "nothing")
    assert "fairface_label_train.csv" in str(err.value) and "github.com/joojs/fairface" in str(err.value)
    (ff_root / "fairface_label_val.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['fairface_label_val.csv'\]"):
        FairFace(ff_root)

    odd = tmp_path / "odd"
    _write_fairface(odd, n_train=6, n_val=3)
    (odd / "fairface_label_val.csv").write_text("file,age,gender,race,service_test\nval/1.jpg,70+,Male,White,True\n")
    with pytest.raises(ValueError, match=r"unknown age bin\(s\) \['70\+'\]"):
        FairFace(odd, "train", "gender", "race", size=8, min_group_size=0)
    (odd / "fairface_label_val.csv").write_text("file,age,gender\nval/1.jpg,0-2,Male\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['race'\]"):
        FairFace(odd, "train", "gender", "race", size=8, min_group_size=0)


def test_fairface_margin_folder_layout(tmp_path: Path) -> None:
    root = tmp_path / "ff"
    _write_fairface(root / "fairface-img-margin025-trainval", n_train=10, n_val=4)
    for f in ("fairface_label_train.csv", "fairface_label_val.csv"):
        shutil.move(root / "fairface-img-margin025-trainval" / f, root / f)
    ds = FairFace(root, "test", "gender", "service_test", size=8)
    assert len(ds) == 4 and ds.image_root == root / "fairface-img-margin025-trainval"


# ----------------------------------------------------------------------------- load()
def test_load_entry_point(folder_root: Path, utk_root: Path, ff_root: Path) -> None:
    assert {"folder", "utkface", "fairface"} <= set(DATASETS)
    ds = load("folder", split="valid", root=folder_root, target="smiling", sensitive=["gender", "age"], size=8,
              labels=folder_root / "labels.csv", image_column="file", seed=2, min_group_size=0)
    assert isinstance(ds, FolderDataset) and ds.sensitive == "gender|age" and ds.n_groups == 4
    assert ds.files == FolderDataset(folder_root, "valid", "smiling", ("gender", "age"), size=8, seed=2,
                                     min_group_size=0).files
    utk = load("utkface", root=utk_root, size=8, min_group_size=0)  # defaults: target gender, sensitive race
    assert isinstance(utk, UTKFace) and (utk.target, utk.sensitive) == ("gender", "race")
    ff = load("fairface", split="test", root=ff_root, sensitive="service_test", size=8)
    assert isinstance(ff, FairFace) and ff.target == "gender" and len(ff) == 14
    with pytest.raises(ValueError, match="'folder' needs root="):
        load("folder", target="smiling", sensitive="gender")
    with pytest.raises(ValueError, match="unknown sensitive attribute 'Handsome' for synth"):
        load("synth", sensitive=["Male", "Handsome"], size=8, n=8, cache_dir=None)  # intersections: every dataset


# ----------------------------------------------------------------------------- fapkit.run on each layout

_TINY_RUN = dict(preset="smoke", arch="small_cnn", size=16, pretrain_epochs=1, epochs=1, batch_size=8)


def test_fapkit_run_trains_faprune_on_a_folder_fixture(tmp_path: Path) -> None:
    import fapkit

    folder_root = tmp_path / "faces"  # 120 images: every (smiling, band) cell in every split
    splits = ("train", "train", "train", "val", "test")
    rows = [[f"img_{i:03d}.png", ("no", "yes")[i % 2], (3, 7, 9)[(i // 2) % 3], splits[i % 5]] for i in range(120)]
    for i, row in enumerate(rows):
        _image(folder_root / row[0], _colour(i))
    _write_csv(folder_root / "labels.csv", ["file", "smiling", "band", "split"], rows)
    result = fapkit.run("faprune", dataset="folder", root=str(folder_root), labels=str(folder_root / "labels.csv"),
                        target="smiling", sensitive="band", runs_dir=tmp_path / "runs", data_seed=0, **_TINY_RUN)
    assert set(result.metrics["groups"]) == {0, 1, 2} and result.metrics["group_names"] == ["3", "7", "9"]
    assert math.isfinite(result.acc) and abs(result.ratio - 0.8) < 0.05
    with pytest.raises(ValueError, match="unknown column 'colour'|'colour'"):
        fapkit.run("faprune", dataset="folder", root=str(folder_root), target="colour", sensitive="band",
                   runs_dir=tmp_path / "runs", **_TINY_RUN)
    with pytest.raises(ValueError, match="fewer than 50|min_group_size"):
        fapkit.run("normal", dataset="folder", root=str(folder_root), target="smiling", sensitive="band",
                   min_group_size=50, runs_dir=tmp_path / "runs", **_TINY_RUN)


def test_fapkit_run_on_the_utkface_and_fairface_layouts(tmp_path: Path) -> None:
    import fapkit

    utk_root, ff_root = tmp_path / "utk", tmp_path / "fairface"  # large enough for every (y, z) cell in every split
    for k in range(160):
        _image(utk_root / _utk_name(k, (20, 50)[(k // 2) % 2], k % 2, k % 5), _colour(k), (10, 10))
    _write_fairface(ff_root, n_train=200, n_val=60)
    utk = fapkit.run("lmw", dataset="utkface", root=str(utk_root), target="gender", sensitive="young",
                     runs_dir=tmp_path / "runs", **_TINY_RUN)
    ff = fapkit.run("ceag", dataset="fairface", root=str(ff_root), target="gender", sensitive="young",
                    runs_dir=tmp_path / "runs", **_TINY_RUN)
    for result in (utk, ff):
        assert math.isfinite(result.acc) and len(result.metrics["groups"]) == 2


def _sixty_images(root: Path) -> Path:
    """60 images, three groups, a split column; the test split has no smiling image of group 9 (the y=1, z=2 cell)."""
    rows = []
    for i in range(60):
        band = (3, 7, 9)[i % 3]
        split = "train" if i < 36 else "valid" if i < 48 else "test"
        smiling = ("no", "yes")[(i // 3) % 2]
        if split == "test" and band == 9:
            smiling = "no"
        rows.append([f"img_{i:03d}.png", smiling, band, split])
    for i, row in enumerate(rows):
        _image(root / row[0], _colour(i))
    _write_csv(root / "labels.csv", ["file", "smiling", "band", "split"], rows)
    return root


def test_a_split_that_cannot_define_deo_gives_a_result_not_a_traceback(tmp_path: Path) -> None:
    import fapkit
    from fapkit.data.base import make_loader
    from fapkit.splits import load_splits

    root = _sixty_images(tmp_path / "faces")
    settings = dict(dataset="folder", root=str(root), labels=str(root / "labels.csv"), target="smiling",
                    sensitive="band", runs_dir=tmp_path / "runs", **_TINY_RUN)
    undefined = r"DEO, DEO_MAX, DEO_MEAN, DEO_TPR undefined on the test split \(no samples with y=1, z=2: TPR"
    with pytest.warns(UserWarning, match=undefined):
        result = fapkit.run("lmw", **settings)
    assert math.isnan(result.deo) and math.isfinite(result.acc) and math.isfinite(result.di)
    assert "y=1, z=2" in result.metrics["undefined"]["deo"] and math.isfinite(result.valid_metrics["deo"])
    cached = fapkit.run("lmw", **settings)  # the flag is kept in the record
    assert cached.metrics["undefined"] == result.metrics["undefined"]
    # The same rule for a user's loaders: the kit's splits handed over as plain loaders.
    splits = load_splits(fapkit.make_config("lmw", **{k: v for k, v in settings.items() if k != "runs_dir"}).data)
    train, valid, test = (make_loader(splits[s], 8, shuffle=s == "train") for s in ("train", "valid", "test"))
    with pytest.warns(UserWarning, match="DEO_TPR undefined on the test split"):
        mine = fapkit.run("lmw", model=fapkit.models.build_model("small_cnn"), train=train, valid=valid, test=test,
                          preset="smoke", epochs=1, pretrain_epochs=1, runs_dir=tmp_path / "runs")
    assert math.isnan(mine.deo) and "undefined" in mine.metrics
