"""Datasets are registered specs (`fapkit.data.registry`): a new one is one `register_dataset` call."""
from __future__ import annotations

import pytest
import torch

from fapkit.config import make_config
from fapkit.data import FaceTensors, load, registry
from fapkit.data.registry import DatasetSpec, dataset_names, dataset_spec, register_dataset
from fapkit.splits import dataset_options


def _open_stripes(root, split, target, sensitive, size, sized, options):
    n = {"train": 8, "valid": 4, "test": 4}[split]
    y, z = torch.tensor([0, 1] * (n // 2)), torch.tensor([0, 0, 1, 1] * (n // 4))
    images = (y.view(-1, 1, 1, 1) * 255).to(torch.uint8).expand(n, 3, size, size).contiguous()
    return FaceTensors(images, y, z, target=target, sensitive=sensitive, name=f"stripes-{options['seed']}")


def test_a_registered_dataset_is_loaded_checked_and_given_the_settings_it_reads(monkeypatch):
    monkeypatch.setattr(registry, "_DATASETS", dict(registry._DATASETS))  # leave the kit's registry as it was
    register_dataset(DatasetSpec("stripes", _open_stripes, attributes=("Bright", "Left"), known=("Bright", "Left"),
                                 options={"data_seed": "seed"}))
    assert "stripes" in dataset_names()
    ds = load("stripes", split="valid", size=8, seed=3)
    assert (ds.target, ds.sensitive, len(ds), ds.name) == ("Bright", "Left", 4, "stripes-3")  # its default attributes
    cfg = make_config("sgdp", dataset="stripes", target="Bright", sensitive="Left", data_seed=5)
    assert dataset_options(cfg.data) == {"seed": 5}  # only what its spec reads
    with pytest.raises(ValueError, match="unknown target attribute 'Smiling' for dataset 'stripes'"):
        make_config("sgdp", dataset="stripes", target="Smiling", sensitive="Left")
    with pytest.raises(ValueError, match="positive applies to dataset 'folder' and 'utkface' and 'fairface', "
                                         "not 'stripes'"):
        make_config("sgdp", dataset="stripes", target="Bright", sensitive="Left", positive="yes")
    with pytest.raises(ValueError, match="dataset 'stripes' is already registered"):
        register_dataset(dataset_spec("stripes"))


def test_an_unknown_dataset_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; expected one of \['synth', 'celeba'"):
        load("imagenet")
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; choose one of synth, celeba"):
        make_config("sgdp", dataset="imagenet")
