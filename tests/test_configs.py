"""Every bundled config: loads, passes the schema, names things that exist, documents its
command, and its "local" variant builds its encoder; the papers' key settings are pinned."""

import importlib.util
import os
import re

import pytest

from supcon_tf import encoders, optimizers, views
from supcon_tf.cli import build, schema
from supcon_tf.cli.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["digits_supcon", "digits_simclr", "digits_ce", "cifar10_supcon", "cifar10_simclr",
         "cifar10_ce", "cifar100_supcon", "imagenet_supcon", "imagenet_simclr",
         "digits_triplet", "digits_multisimilarity", "digits_proxyanchor",
         "digits_moco", "digits_supcon_moco", "digits_byol", "cifar10_moco", "cifar10_byol",
         "imagenet_moco", "imagenet_byol",
         "digits_simsiam", "digits_swav", "cifar10_simsiam", "cifar10_swav", "imagenet_swav",
         "digits_barlow_twins", "digits_vicreg", "cifar10_barlow_twins", "cifar10_vicreg",
         "imagenet_barlow_twins", "imagenet_vicreg",
         "digits_nnclr", "cifar10_nnclr", "imagenet_nnclr",
         "digits_dino", "cifar10_dino", "imagenet_dino",
         "digits_instdisc", "cifar10_instdisc", "imagenet_instdisc",
         "digits_clip", "digits_siglip", "coco_clip", "digits_amdim", "cifar10_amdim",
         "digits_cpc", "cifar10_cpc", "stl10_cpc", "imagenet_cpc",
         "digits_yadim", "cifar10_yadim", "stl10_yadim", "imagenet_yadim"]


def _module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_config_file_is_listed():
    on_disk = {f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
               if f.endswith(".py") and not f.startswith("_")}  # Not the package's __init__.
    assert on_disk == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("arg", [None, "local"])
def test_config_resolves_and_names_exist(name, arg):
    module = _module(name)
    config = schema.resolve(module.get_config(arg))
    # The docstring holds the commands that run it (full and local).
    assert f"supcon-tf --config=configs/{name}.py" in module.__doc__
    assert f"--config=configs/{name}.py:local" in module.__doc__
    assert config["encoder"]["name"] in encoders.ENCODERS
    assert config["views"]["policy"] in views.POLICIES
    assert config["linear"]["augmentation"] in views.POLICIES
    for stage in ("pretrain", "linear"):
        assert config[stage]["optimizer"] in optimizers.OPTIMIZERS
        build.check_kwargs(f"{stage}.optimizer_kwargs",
                           optimizers.OPTIMIZERS.lookup(config[stage]["optimizer"]),
                           config[stage]["optimizer_kwargs"])
    build.check_kwargs("encoder.kwargs", encoders.ENCODERS.lookup(config["encoder"]["name"]),
                       config["encoder"]["kwargs"], reserved=("input_shape",))
    build.check_kwargs("views.kwargs", views.POLICIES.lookup(config["views"]["policy"]),
                       config["views"]["kwargs"], reserved=("image_size", "seed"))
    if config["method"] != "ce":
        build.loss(config)
        build.check_kwargs("method_kwargs", build.methods.METHODS.lookup(config["method"]),
                           config["method_kwargs"], reserved=build.METHOD_RESERVED)


def test_unknown_config_argument_is_refused():
    with pytest.raises(ValueError, match="Unknown config argument 'tiny'"):
        _module("digits_supcon").get_config("tiny")


@pytest.mark.parametrize("name, shape", [("cifar10_supcon", (32, 32, 3)),
                                         ("imagenet_simclr", (64, 64, 3)),
                                         ("digits_supcon", (8, 8, 1)),
                                         ("imagenet_swav", (64, 64, 3)),
                                         ("imagenet_dino", (64, 64, 3)),
                                         ("cifar10_cpc", (32, 32, 3)),
                                         ("cifar10_yadim", (32, 32, 3))])
def test_local_variants_build_small_encoders(name, shape):
    config = schema.resolve(_module(name).get_config("local"))
    if config["views"]["image_size"] is not None:
        assert tuple(config["views"]["image_size"]) == shape[:2]
    encoder = build.encoder(config, shape)
    assert encoder.count_params() < 500_000


@pytest.mark.parametrize("name", ["cifar10_cpc", "stl10_cpc", "imagenet_cpc"])
def test_cpc_configs_cut_the_papers_seven_by_seven_grid(name):
    config = schema.resolve(_module(name).get_config())
    kwargs = config["encoder"]["kwargs"]
    assert views.patch_grid(config["views"]["image_size"], kwargs["patch_size"],
                            kwargs["overlap"]) == (7, 7)
    assert kwargs["overlap"] * 2 == kwargs["patch_size"]  # Half of each patch overlaps.


def test_the_views_a_framework_config_needs_follow_its_extraction():
    config = _module("digits_cpc").get_config("local")  # CPC: one view per image.
    assert schema.resolve(config)["views"]["num_views"] == 1
    config.method_kwargs.extraction = "amdim"  # Two views.
    with pytest.raises(UsageError, match=r"'views.num_views' must be >= 2"):
        schema.resolve(config)
    config.method_kwargs.extraction = "cpcc"
    with pytest.raises(UsageError, match=r"'method_kwargs'.*Did you mean 'cpc'"):
        schema.resolve(config)


# The papers' settings each config claims in its docstring.
PAPER = {
    "cifar10_supcon": dict(method="supcon", encoder="resnet50", stem="cifar", batch=1024,
                           temperature=0.1, optimizer="sgd", lr=0.5, epochs=1000),
    "cifar100_supcon": dict(method="supcon", encoder="resnet50", stem="cifar", batch=1024,
                            temperature=0.1, optimizer="sgd", lr=0.5, epochs=1000),
    "cifar10_simclr": dict(method="simclr", encoder="resnet18", stem="cifar", batch=512,
                           temperature=0.5, optimizer="lars", lr=1.0, epochs=1000),
    "cifar10_ce": dict(method="ce", encoder="resnet50", stem="cifar", batch=1024,
                       temperature=None, optimizer="sgd", lr=0.8, epochs=500),
    "imagenet_supcon": dict(method="supcon", encoder="resnet50", stem="imagenet", batch=6144,
                            temperature=0.1, optimizer="lars", lr=0.3, epochs=700),
    "imagenet_simclr": dict(method="simclr", encoder="resnet50", stem="imagenet", batch=4096,
                            temperature=0.1, optimizer="lars", lr=0.3, epochs=1000),
    "cifar10_moco": dict(method="moco", encoder="resnet18", stem="cifar", batch=512,
                         temperature=0.1, optimizer="sgd", lr=0.06, epochs=200,
                         method_kwargs=dict(queue_size=4096, momentum=0.99)),
    "imagenet_moco": dict(method="moco", encoder="resnet50", stem="imagenet", batch=256,
                          temperature=0.2, optimizer="sgd", lr=0.03, epochs=200,
                          method_kwargs=dict(queue_size=65536, momentum=0.999)),
    "cifar10_byol": dict(method="byol", encoder="resnet18", stem="cifar", batch=256,
                         temperature=None, optimizer="lars", lr=1.0, epochs=1000,
                         method_kwargs=dict(momentum=0.99, momentum_schedule="cosine")),
    "imagenet_byol": dict(method="byol", encoder="resnet50", stem="imagenet", batch=4096,
                          temperature=None, optimizer="lars", lr=0.2, epochs=1000,
                          method_kwargs=dict(momentum=0.996, momentum_schedule="cosine")),
    "cifar10_simsiam": dict(method="simsiam", encoder="resnet18", stem="cifar", batch=512,
                            temperature=None, optimizer="sgd", lr=0.03, epochs=800),
    "imagenet_swav": dict(method="swav", encoder="resnet50", stem="imagenet", batch=4096,
                          temperature=0.1, optimizer="lars", lr=0.6, epochs=800),
    "imagenet_barlow_twins": dict(method="barlow_twins", encoder="resnet50", stem="imagenet",
                                  batch=2048, temperature=None, optimizer="lars", lr=0.2,
                                  epochs=1000, loss=dict(lambd=0.0051), projector=8192),
    "imagenet_vicreg": dict(method="vicreg", encoder="resnet50", stem="imagenet", batch=2048,
                            temperature=None, optimizer="lars", lr=0.2, epochs=1000,
                            loss=dict(invariance_weight=25.0, variance_weight=25.0,
                                      covariance_weight=1.0), projector=8192),
    "cifar10_nnclr": dict(method="nnclr", encoder="resnet18", stem="cifar", batch=256,
                          temperature=0.2, optimizer="lars", lr=0.4, epochs=1000,
                          method_kwargs=dict(queue_size=65536, predictor_hidden_dims=(4096,))),
    "imagenet_nnclr": dict(method="nnclr", encoder="resnet50", stem="imagenet", batch=4096,
                           temperature=0.1, optimizer="lars", lr=0.3, epochs=1000,
                           method_kwargs=dict(queue_size=98304, predictor_hidden_dims=(4096,))),
    "imagenet_dino": dict(method="dino", encoder="vit_small", stem=None, batch=1024,
                          temperature=None, optimizer="adamw", lr=0.0005, epochs=800,
                          method_kwargs=dict(out_dim=65536, momentum=0.996,
                                             weight_decay_end=0.4)),
    "cifar10_instdisc": dict(method="instdisc", encoder="resnet18", stem="cifar", batch=128,
                             temperature=0.07, optimizer="sgd", lr=0.03, epochs=200,
                             loss=dict(proximal=30.0),
                             method_kwargs=dict(bank_size=50_000, num_noise=4096,
                                                bank_momentum=0.5)),
    "imagenet_instdisc": dict(method="instdisc", encoder="resnet50", stem="imagenet",
                              batch=256, temperature=0.07, optimizer="sgd", lr=0.03,
                              epochs=200, loss=dict(proximal=30.0),
                              method_kwargs=dict(bank_size=1_281_167, num_noise=4096,
                                                 bank_momentum=0.5)),
    "coco_clip": dict(method="clip", encoder="resnet50", stem="imagenet", batch=1024,
                      temperature=None, optimizer="adamw", lr=5e-4, epochs=32),
    "cifar10_amdim": dict(method="framework", encoder="resnet18", stem="cifar", batch=480,
                          temperature=None, optimizer="adam", lr=2e-4, epochs=150,
                          loss=dict(name="nce", tclip=20.0, score_penalty=5e-2),
                          method_kwargs=dict(extraction="amdim", similarity="scaled_dot")),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_settings(name):
    want = PAPER[name]
    c = schema.resolve(_module(name).get_config())
    assert c["method"] == want["method"]
    assert c["encoder"]["name"] == want["encoder"]
    assert c["encoder"]["kwargs"].get("stem") == want["stem"]
    assert c["pretrain"]["batch_size"] == want["batch"]
    assert c["pretrain"]["optimizer"] == want["optimizer"]
    assert c["pretrain"]["learning_rate"] == want["lr"]
    assert c["pretrain"]["epochs"] == want["epochs"]
    if want["temperature"] is not None:
        assert c["loss"]["temperature"] == want["temperature"]
    for key, value in want.get("method_kwargs", {}).items():
        assert c["method_kwargs"][key] == value, key
    for key, value in want.get("loss", {}).items():
        assert c["loss"][key] == value, key
    if "projector" in want:  # Barlow Twins' and VICReg's 3 x 8192, not L2-normalized.
        width = want["projector"]
        assert (tuple(c["head"]["hidden_dims"]), c["head"]["output_dim"]) == ((width,) * 2, width)
        assert not c["head"]["normalize"]
    if want["method"] == "swav":  # Multi-crop 2 x 224 + 6 x 96, 3000 prototypes, eps 0.05.
        m = c["views"]["multicrop"]
        assert (c["views"]["num_views"], m["local_views"], tuple(m["local_size"])) == (
            2, 6, (96, 96))
        assert tuple(m["global_scale"]) == (0.14, 1.0) and tuple(m["local_scale"]) == (0.05, 0.14)
        assert c["method_kwargs"]["num_prototypes"] == 3000 and c["loss"]["epsilon"] == 0.05
    if want["method"] == "dino":  # ViT-S/16, 2 x 224 + 8 x 96, temperatures, decay, clip.
        m = c["views"]["multicrop"]
        assert c["encoder"]["kwargs"]["patch_size"] == 16
        assert (c["views"]["num_views"], m["local_views"], tuple(m["local_size"])) == (
            2, 8, (96, 96))
        assert tuple(m["global_scale"]) == (0.4, 1.0) and tuple(m["local_scale"]) == (0.05, 0.4)
        assert (c["loss"]["student_temperature"], c["loss"]["warmup_teacher_temperature"],
                c["loss"]["teacher_temperature"]) == (0.1, 0.04, 0.07)
        assert c["pretrain"]["weight_decay"] == 0.04
        assert c["pretrain"]["optimizer_kwargs"]["clipnorm"] == 3.0
        assert tuple(c["head"]["hidden_dims"]) == (2048, 2048) and c["head"]["output_dim"] == 256
    if want["method"] == "clip":  # Scale 1/0.07 clipped at 100, wd 0.2, 12x512 text tower.
        assert c["loss"]["name"] == "clip" and c["loss"]["max_scale"] == 100.0
        assert c["loss"]["scale_init"] == 1 / 0.07  # The same expression: exact.
        assert c["pretrain"]["weight_decay"] == 0.2
        assert c["method_kwargs"]["text_encoder"] == dict(width=512, num_layers=12, num_heads=8)
        assert c["captions"]["context_length"] == 76
    if want["method"] == "framework":  # AMDIM: 1-5, 1-7, 5-5; 1,024-d embeddings (n_rkhs).
        assert tuple(c["method_kwargs"]["extraction_kwargs"]["comparisons"]) == (
            "r1-r5", "r1-r7", "r5-r5")
        assert c["head"]["output_dim"] == 1024 and not c["head"]["normalize"]
    doc = _module(name).__doc__
    assert re.search(rf"\b{want['batch']}\b", doc) and str(want["epochs"]) in doc
