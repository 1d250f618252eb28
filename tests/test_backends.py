"""The core tests again on Keras' JAX backend (the backend is fixed per process)."""

import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
X64 = {"JAX_ENABLE_X64": "1"}  # float64 reference checks
# What depends on the backend, rerun on JAX: module -> (extra environment, the test
# functions to run, or None for all). The numerics (every loss and its float64 reference,
# gradients, optimizers, schedules, mixed precision, kNN, retrieval) and every
# registered method's own train_step (the contract's fit). Left to
# the TensorFlow run: what only builds Keras layers or drives callbacks, files and
# subprocesses the same way on either backend.
CORE_TESTS = {
    "tests/test_losses.py": (X64, None),
    "tests/test_metric_losses.py": (X64, None),
    "tests/test_clip_losses.py": (X64, None),
    "tests/test_instdisc_loss.py": (X64, None),
    "tests/test_cpc.py": (X64, None),
    "tests/test_nce_loss.py": (X64, None),
    "tests/test_redundancy_losses.py": ({}, None),
    "tests/test_nnclr_loss.py": ({}, None),
    "tests/test_simsiam_swav_losses.py": ({}, None),
    "tests/test_retrieval.py": ({}, None),
    "tests/test_schedules.py": ({}, None),
    "tests/test_precision.py": ({}, None),
    "tests/test_text.py": ({}, None),
    "tests/test_method_contract.py": ({}, (
        "test_fit_trains_with_a_finite_loss", "test_bad_batches_are_refused_with_their_name")),
    "tests/test_lars.py": ({}, (
        "test_matches_numpy_reference", "test_excluded_variable_takes_plain_momentum_step",
        "test_trains_a_model_under_fit")),
    "tests/test_knn.py": ({}, (
        "test_knn_predict_matches_numpy", "test_knn_weights_by_similarity_not_majority",
        "test_knn_accuracy_counts_correct_queries", "test_knn_bad_input")),
    "tests/test_encoders_heads.py": ({}, (
        "test_batch_norm_follows_official_settings_and_sync_option",
        "test_any_keras_model_is_an_encoder",
        "test_projection_head_defaults_normalized_and_configurable",
        "test_linear_head_stop_gradient", "test_heads_serialize")),
    "tests/test_methods.py": ({}, (
        "test_call_on_views_and_images", "test_train_step_loss_equals_loss_of_outputs",
        "test_regularization_losses_are_added", "test_train_step_rejects_images_of_wrong_rank")),
    "tests/test_probe.py": ({}, (
        "test_probe_leaves_encoder_gradients_unchanged",
        "test_a_probe_without_stop_gradient_would_change_them",
        "test_one_sgd_step_moves_the_encoder_as_without_probe")),
    "tests/test_momentum_methods.py": ({}, (
        "test_moco_steps_match_algorithm_1", "test_byol_steps_match_the_paper",
        "test_loss_functions_hand_values", "test_momentum_schedule")),
    "tests/test_metric_method.py": ({}, (
        "test_loss_sees_embeddings_of_every_view_with_repeated_labels",
        "test_proxies_train_at_the_multiplied_learning_rate")),
    "tests/test_multicrop.py": ({}, (
        "test_view_groups_encode_once_per_resolution_and_concatenate",
        "test_supcon_on_view_groups_takes_every_view_as_positive",
        "test_fit_with_multicrop_inside_the_step",
        "test_swav_prototypes_frozen_for_the_first_steps",
        "test_swav_queue_holds_the_last_batch_and_joins_sinkhorn")),
    "tests/test_dino.py": ({}, (
        "test_dino_loss_matches_reference", "test_dino_loss_hand_value",
        "test_dino_loss_gradient_reaches_the_student_only",
        "test_center_and_teacher_temperature_schedule",
        "test_weight_norm_last_layer_value_fixed_norm_and_gate",
        "test_weight_decay_schedule_follows_the_cosine",
        "test_vit_position_embeddings_are_interpolated_to_the_crop_grid")),
}


def _groups():
    """Modules grouped by their extra environment: one JAX process per environment, started
    once, which compiles each eager operation once per shape for all its modules (the default
    group took 286 s of CPU as three processes of 6 modules, 267 s as one). The float64
    checks need their own: JAX_ENABLE_X64 is fixed at start-up."""
    groups = {}
    for module, (extra, _) in sorted(CORE_TESTS.items()):
        groups.setdefault(tuple(sorted(extra.items())), []).append(module)
    return groups


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="already on JAX")
@pytest.mark.parametrize("group", sorted(_groups()), ids=lambda g: ",".join(map("=".join, g))
                         or "default")
def test_core_modules_pass_on_jax(group, tmp_path):
    pytest.importorskip("jax")
    modules = _groups()[group]
    env = dict(os.environ, KERAS_BACKEND="jax", **dict(group))  # group: its extra variables
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    report = tmp_path / "report.xml"
    targets = [target for m in modules for target in (
        [m] if CORE_TESTS[m][1] is None else [f"{m}::{name}" for name in CORE_TESTS[m][1]])]
    result = subprocess.run([sys.executable, "-m", "pytest", f"--junitxml={report}", *targets],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert "backend jax" in result.stdout, output  # The header: these ran on JAX.
    ran = {m: 0 for m in modules}
    for case in ET.parse(report).getroot().iter("testcase"):
        path = "tests/" + case.get("classname").split(".")[-1] + ".py"
        if path in ran and case.find("skipped") is None:
            ran[path] += 1
    assert all(ran.values()), f"modules that ran no test on JAX: {ran}"
