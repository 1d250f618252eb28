"""LARS against its update rule written out in NumPy, exclusions included."""

import keras
import numpy as np
import pytest

from supcon_tf import optimizers
from supcon_tf.optimizers import LARS, WarmupCosine
from tolerance import assert_close, is_close


def numpy_lars(weights, grads_per_step, lrs, adapted, momentum, weight_decay, eta, nesterov):
    """The LARS rule (You et al. 2017; SimCLR's variant) step by step in NumPy, float64."""
    weights = [w.astype(np.float64).copy() for w in weights]
    velocity = [np.zeros_like(w) for w in weights]
    for grads, lr in zip(grads_per_step, lrs):
        for i, (w, g) in enumerate(zip(weights, grads)):
            g = g.astype(np.float64)
            scaled = lr
            if adapted[i]:
                g = g + weight_decay * w
                w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
                if w_norm > 0 and g_norm > 0:
                    scaled = lr * eta * w_norm / g_norm
            velocity[i] = momentum * velocity[i] + scaled * g
            step = momentum * velocity[i] + scaled * g if nesterov else velocity[i]
            weights[i] = w - step
    return weights


def small_model():
    """Dense (kernel, bias) -> BatchNorm (gamma, beta) -> Dense without bias (a zero kernel)."""
    model = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(4, name="dense"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Dense(2, use_bias=False, kernel_initializer="zeros", name="out"),
    ])
    rng = np.random.default_rng(1)
    model.layers[0].kernel.assign(rng.standard_normal((3, 4)))
    model.layers[0].bias.assign(rng.standard_normal(4))
    model.layers[1].gamma.assign(1.0 + rng.standard_normal(4) * 0.1)
    model.layers[1].beta.assign(rng.standard_normal(4) * 0.1)
    return model


def run(optimizer, steps=3):
    model = small_model()
    variables = model.trainable_variables
    start = [keras.ops.convert_to_numpy(v) for v in variables]
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(v.shape).astype("float32") * 10 ** rng.uniform(-2, 1)
              for v in variables] for _ in range(steps)]
    lrs = []
    for step_grads in grads:
        lrs.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step_grads], variables)
    return ([v.path for v in variables], start, grads, lrs,
            [keras.ops.convert_to_numpy(v) for v in variables])


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(nesterov=True, weight_decay=1e-2, momentum=0.5),
    dict(trust_coefficient=0.1, weight_decay=1e-3, exclude_from_adaptation=()),
    dict(weight_decay=1e-2, exclude_from_adaptation=("kernel",)),
    dict(learning_rate=WarmupCosine(1.0, total_steps=4, warmup_steps=2), weight_decay=1e-4),
])
def test_matches_numpy_reference(kwargs):
    kwargs = {"learning_rate": 0.5, "weight_decay": 1e-6, **kwargs}
    optimizer = LARS(**kwargs)
    paths, start, grads, lrs, got = run(optimizer)
    adapted = [optimizer.adapts(v) for v in small_model().trainable_variables]
    want = numpy_lars(start, grads, lrs, adapted, momentum=kwargs.get("momentum", 0.9),
                      weight_decay=kwargs["weight_decay"],
                      eta=kwargs.get("trust_coefficient", 0.001),
                      nesterov=kwargs.get("nesterov", False))
    for path, w, g, s in zip(paths, want, got, start):
        # float32 vs the float64 reference: 3 steps, each with the norms of a kernel (at
        # most 3 x 4 values) in its trust ratio: terms 3 x 12 (magnitude max |w|, at least 1).
        assert not is_close(g, s, dtype="float32", terms=3 * 12), path  # every variable moved
        assert_close(g, w, dtype="float32", terms=3 * 12, err_msg=path)


def test_default_exclusions_are_biases_and_batch_norm():
    optimizer = LARS()
    flags = {v.path: optimizer.adapts(v) for v in small_model().trainable_variables}
    assert flags == {"sequential/dense/kernel": True, "sequential/dense/bias": False,
                     "sequential/bn/gamma": False, "sequential/bn/beta": False,
                     "sequential/out/kernel": True} or (
        sorted(flags.values()) == [False, False, False, True, True]
        and all(flags[p] == p.endswith("kernel") for p in flags))


def test_excluded_variable_takes_plain_momentum_step():
    """An excluded variable: no trust ratio and no weight decay, v = m v + lr g."""
    optimizer = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.1)
    paths, start, grads, _, got = run(optimizer, steps=2)
    i = next(k for k, p in enumerate(paths) if p.endswith("bias"))
    v1 = 0.5 * grads[0][i]
    v2 = 0.9 * v1 + 0.5 * grads[1][i]
    assert_close(got[i], start[i] - v1 - v2, dtype="float32", terms=2)  # two float32 steps


def test_serialization_round_trip():
    optimizer = LARS(learning_rate=WarmupCosine(0.3, 100, 10), momentum=0.8, weight_decay=1e-5,
                     trust_coefficient=0.002, exclude_from_adaptation=("bias",), nesterov=True)
    config = keras.saving.serialize_keras_object(optimizer)
    assert config["registered_name"] == "supcon_tf>LARS"
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, LARS)
    assert restored.get_config() == optimizer.get_config()
    assert isinstance(restored._learning_rate, WarmupCosine)
    assert restored.get_config()["weight_decay"] == 1e-5


@pytest.mark.parametrize("bad,match", [
    (dict(momentum=1.0), "momentum"), (dict(trust_coefficient=0.0), "trust_coefficient"),
    (dict(weight_decay=-1.0), "weight_decay"), (dict(exclude_from_adaptation=("(",)),
                                                 "exclude_from_adaptation")])
def test_bad_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        LARS(**bad)


def test_get_by_name():
    lars = optimizers.get("lars", learning_rate=0.2, momentum=0.9, weight_decay=1e-6,
                          trust_coefficient=0.001, exclude_from_adaptation=("bias", "bn"))
    assert isinstance(lars, LARS) and lars.exclude_from_adaptation == ("bias", "bn")
    for name, cls in [("sgd", keras.optimizers.SGD), ("adam", keras.optimizers.Adam),
                      ("adamw", keras.optimizers.AdamW), ("lamb", keras.optimizers.Lamb)]:
        assert type(optimizers.get(name, learning_rate=0.1)) is cls
    assert optimizers.get(lars) is lars
    with pytest.raises(ValueError, match="Valid optimizer names: adam, adamw, lamb, lars, sgd"):
        optimizers.get("larz")


def test_trains_a_model_under_fit():
    model = small_model()
    model.compile(optimizer=LARS(learning_rate=0.1, trust_coefficient=0.01), loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 3)).astype("float32")
    y = x[:, :2] * 2.0
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0]
