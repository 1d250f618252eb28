"""The contrastive framework's method: encoders' feature maps, the Framework's comparisons
(AMDIM's and the SimCLR-style global one, against tests/amdim_reference.py), and its
errors for bad settings. (The loss itself: tests/test_nce_loss.py.)"""

import keras
import numpy as np
import pytest
from keras import ops

from amdim_reference import amdim_loss
from supcon_tf import encoders, methods
from supcon_tf.encoders.feature_maps import feature_maps
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import NCELoss
from tolerance import assert_close

RNG = np.random.default_rng(7)


def small_encoder():
    return encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)


def amdim_model(**kwargs):
    kwargs.setdefault("extraction_kwargs",
                      dict(maps={"r1": "output", "r5": "block2", "r7": "block1"}, seed=1))
    return methods.Framework(small_encoder(), ProjectionHead(hidden_dims=(8,), output_dim=4,
                                                             normalize=False), **kwargs)


def test_feature_maps_of_a_resnet_are_its_stages():
    resnet = encoders.get("resnet18", input_shape=(16, 16, 3), stem="cifar",
                          width_multiplier=0.125)
    x = RNG.random((1, 16, 16, 3)).astype("float32")
    maps = feature_maps(resnet, ["stem", "stage2", "stage4"])(x)
    assert [tuple(maps[k].shape) for k in ("stem", "stage2", "stage4")] == [
        (1, 16, 16, 8), (1, 8, 8, 16), (1, 2, 2, 64)]
    stage2 = keras.Model(resnet.input, resnet.get_layer("stage2_block2_out").output)(x)
    assert_close(ops.convert_to_numpy(maps["stage2"]), ops.convert_to_numpy(stage2))


def test_amdim_comparisons():
    model = amdim_model(loss=NCELoss(tclip=20.0, score_penalty=5e-2), similarity="scaled_dot")
    views = RNG.random((3, 2, 8, 8, 1)).astype("float32")
    out = model(views, training=False)
    comparisons = out["comparisons"]
    # 1-5, 1-7, 5-5, each both ways at weight 1/2; targets of all 3 samples; one source.
    assert len(comparisons) == 6
    assert [tuple(c["scores"].shape) for c in comparisons] == [
        (3, 1, 3, 16), (3, 1, 3, 16), (3, 1, 3, 64), (3, 1, 3, 64), (3, 1, 3, 16),
        (3, 1, 3, 16)]
    assert all(float(c["weight"]) == 0.5 for c in comparisons)
    assert_close(ops.convert_to_numpy(comparisons[0]["same"]), np.eye(3))
    # The 5-5 source is one location of view 0's 4x4 map: its scores are a row of the
    # location-by-location scores.
    block2 = keras.Model(model.encoder.input, model.encoder.get_layer("relu2").output)
    embed = model.extraction.heads["r5"]
    local = [ops.convert_to_numpy(embed(ops.reshape(block2(views[:, v]), (-1, 8)))).reshape(
        3, 16, 4) for v in (0, 1)]
    every = np.einsum("isd,jtd->isjt", local[0], local[1]) / 2.0
    got = ops.convert_to_numpy(comparisons[4]["scores"])[:, 0]
    for i in range(3):
        assert min(np.abs(every[i, s] - got[i]).max() for s in range(16)) < 1e-4


def test_global_extraction_is_infonce_across_views():
    model = methods.Framework(small_encoder(), ProjectionHead(hidden_dims=(), output_dim=4,
                                                              use_batch_norm=False,
                                                              normalize=False),
                              loss=NCELoss(tclip=None), extraction="global",
                              similarity="dot")
    views = RNG.random((4, 2, 8, 8, 1)).astype("float32")
    out = model(views, training=False)
    loss = float(ops.convert_to_numpy(model.compute_method_loss(None, out)))
    e = [ops.convert_to_numpy(model.head(model.encoder(views[:, v]))) for v in (0, 1)]
    want = 0.5 * (amdim_loss(e[0], e[1][:, None], scale=1.0, tclip=1e12)
                  + amdim_loss(e[1], e[0][:, None], scale=1.0, tclip=1e12))
    assert_close(loss, want, terms=4 + 2 * 4, magnitude=max(1.0, abs(want)))


def test_bad_settings_name_their_key():
    with pytest.raises(ValueError, match="`extraction_kwargs`.*feature map 'stage3'.*"
                                         "'block1', 'block2'"):
        amdim_model(extraction_kwargs=dict(maps={"r1": "output", "r5": "stage3",
                                                 "r7": "block1"}))
    with pytest.raises(ValueError, match="`comparisons` holds 'r1-r9'"):
        amdim_model(extraction_kwargs=dict(maps={"r1": "output", "r5": "block2"},
                                           comparisons=("r1-r5", "r1-r9")))
    with pytest.raises(ValueError, match="Unknown extraction 'amdm'.*Did you mean 'amdim'"):
        amdim_model(extraction="amdm")
    with pytest.raises(ValueError, match="`similarity` must be a similarity"):
        amdim_model(similarity="l2")
    with pytest.raises(ValueError, match="`source_location`"):
        amdim_model(extraction_kwargs=dict(maps={"r1": "output", "r5": "block2"},
                                           comparisons=("r5-r5",), source_location="one"))


def test_claim_tool_table_and_merge_of_logs(tmp_path):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "tools" / "framework_claim.py"
    spec = importlib.util.spec_from_file_location("framework_claim", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    log = tmp_path / "seed0.log"
    log.write_text("[10s] seed 0 | crop | amdim: 0.9000\n[20s] seed 0 | crop | global: 0.8000\n"
                   "[30s] seed 1 | crop | amdim: 0.8000\n[40s] seed 1 | crop | global: 0.8000\n"
                   "[50s] seed 0 | weak_crop | amdim: 0.5000\n")  # A run stopped early.
    tool.main(["--merge", str(log), "--out", str(tmp_path / "out")])
    table = (tmp_path / "out" / "table.md").read_text().splitlines()
    # The row with both extractions only: means ± std in %, its spread across extractions.
    assert table[2] == "| crop (>= 50%) only | 85.0 ± 5.0 | 80.0 ± 0.0 | 5.0 |"
    assert len(table) == 4 and table[3].startswith("| spread across augmentations | 0.0 |")
