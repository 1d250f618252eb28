"""WarmupCosine and the batch-size scaling rules, against hand-computed values."""

import math

import keras
import numpy as np
import pytest

from supcon_tf.optimizers import WarmupCosine, scale_learning_rate
from tolerance import assert_close


def values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(s))) for s in steps])


def test_warmup_then_cosine():
    schedule = WarmupCosine(base_learning_rate=2.0, total_steps=12, warmup_steps=4)
    got = values(schedule, [0, 1, 2, 4, 6, 8, 10, 12, 20])
    want = [0.0, 0.5, 1.0, 2.0, 1.0 + math.cos(math.pi / 4), 1.0, 1.0 - math.cos(math.pi / 4),
            0.0, 0.0]
    assert_close(got, want, dtype="float32")  # elementwise float32 (a cosine): terms 1


def test_no_warmup_is_plain_cosine():
    schedule = WarmupCosine(1.0, total_steps=4)
    assert_close(values(schedule, [0, 1, 2, 3, 4]),
                 [1.0, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, 0.5 - 0.5 * math.cos(math.pi / 4),
                  0.0], dtype="float32")


def test_serializable_and_usable_by_optimizers():
    schedule = WarmupCosine(0.3, total_steps=100, warmup_steps=10)
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"] == "supcon_tf>WarmupCosine"
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.get_config() == schedule.get_config()
    # The same computation on the same inputs: bit-identical.
    np.testing.assert_array_equal(values(restored, [5, 55]), values(schedule, [5, 55]))
    sgd = keras.optimizers.SGD(learning_rate=schedule)
    assert float(keras.ops.convert_to_numpy(sgd.learning_rate)) == 0.0  # step 0 of warm-up: exactly 0


@pytest.mark.parametrize("rule,want", [("linear", 0.3 * 4096 / 256), ("sqrt", 0.075 * 64.0),
                                       ("none", 0.3)])
def test_scale_learning_rate(rule, want):
    base = 0.075 if rule == "sqrt" else 0.3
    # Python floats (float64), one multiplication or square root.
    assert_close(scale_learning_rate(base, 4096, rule), want, dtype="float64")


@pytest.mark.parametrize("call,match", [
    (lambda: scale_learning_rate(0.1, 256, "square"), "rule"),
    (lambda: scale_learning_rate(0.1, 0), "batch_size"),
    (lambda: WarmupCosine(0.1, total_steps=0), "total_steps"),
    (lambda: WarmupCosine(0.1, total_steps=10, warmup_steps=11), "warmup_steps"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
