"""Loads an export in a process without supcon_tf, as a TF Hub user would (run by the tests).

Usage: python -I _hub_consumer.py EXPORT_DIR DATA.npz SNIPPETS.json OUT.json

Compares every signature through `hub.load`, `hub.KerasLayer` (tf_keras) and
`keras.layers.TFSMLayer` with the reference outputs in DATA.npz, checks training
mode (gradients, fine-tuning), runs the README snippets, and writes what it found
to OUT.json for the test to assert on.
"""

import importlib.abc
import importlib.util
import json
import sys


class _NoSupconTF(importlib.abc.MetaPathFinder):
    """Makes supcon_tf unimportable even where it is installed in site-packages."""

    def find_spec(self, name, path=None, target=None):
        if name == "supcon_tf" or name.startswith("supcon_tf."):
            raise ImportError(f"{name} is blocked in this process")
        return None


def main(export_dir, data_path, snippets_path, out_path):
    on_path = importlib.util.find_spec("supcon_tf") is not None
    sys.meta_path.insert(0, _NoSupconTF())
    try:
        import supcon_tf  # noqa: F401
        importable = True
    except ImportError:
        importable = False

    import keras
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    data = dict(np.load(data_path))
    x, x8 = data["images"], data["images_uint8"]
    ref = {k[4:]: v for k, v in data.items() if k.startswith("ref_")}
    ref8 = {k[5:]: v for k, v in data.items() if k.startswith("ref8_")}
    report = {"supcon_tf_on_path": on_path, "supcon_tf_importable": importable, "diffs": {}}
    diffs = report["diffs"]

    def compare(tag, outputs, want):
        if not isinstance(outputs, dict):
            outputs = {"unnormalized_embeddings": outputs}
        for key, value in outputs.items():
            diffs[f"{tag}/{key}"] = float(np.max(np.abs(np.asarray(value) - want[key])))

    # hub.load: signatures, __call__ and the attribute functions (float32 and uint8).
    module = hub.load(export_dir)
    names = sorted(module.signatures.keys())
    report["signatures"] = names
    report["num_variables"] = len(module.variables)
    report["num_trainable_variables"] = len(module.trainable_variables)
    report["num_regularization_losses"] = len(module.regularization_losses)
    # The float32 signatures are also served as NAME_uint8, and `encoded` takes PNG bytes.
    uint8_names = [n for n in names if n.endswith("_uint8")]
    for name in uint8_names:
        compare(f"hub.load/signature/{name}", module.signatures[name](images=tf.constant(x8)),
                ref8)
    pngs = tf.constant([tf.io.encode_png(image).numpy() for image in x8])
    compare("hub.load/signature/encoded", module.signatures["encoded"](images=pngs), ref8)
    names = [n for n in names if n not in uint8_names and n != "encoded"]
    for name in names:
        compare(f"hub.load/signature/{name}", module.signatures[name](images=tf.constant(x)), ref)
        compare(f"hub.load/function/{name}", getattr(module, name)(tf.constant(x)), ref)
        compare(f"hub.load/function_uint8/{name}", getattr(module, name)(tf.constant(x8)), ref8)
    compare("hub.load/__call__", module(x), ref)
    compare("hub.load/__call__uint8", module(x8), ref8)
    compare("hub.load/__call__training_false", module(x, training=False), ref)

    # hub.KerasLayer inside tf_keras models: __call__ (from the path) and each signature
    # (from the module loaded above, to load it once).
    inputs = tf_keras.Input(shape=x.shape[1:])
    model = tf_keras.Model(inputs, hub.KerasLayer(export_dir)(inputs))
    compare("hub.KerasLayer/__call__", model(x, training=False), ref)
    for name in names:
        layer = hub.KerasLayer(module, signature=name, signature_outputs_as_dict=True)
        model = tf_keras.Model(inputs, layer(inputs))
        compare(f"hub.KerasLayer/{name}", model(x, training=False), ref)

    # keras.layers.TFSMLayer inside Keras 3 models: each endpoint.
    for name in names:
        k_inputs = keras.Input(shape=x.shape[1:])
        outputs = keras.layers.TFSMLayer(export_dir, call_endpoint=name)(k_inputs)
        model = keras.Model(k_inputs, outputs)
        compare(f"TFSMLayer/{name}", model(x, training=False), ref)

    # Training mode: a gradient for every trainable variable; BatchNorm statistics move.
    stats = [v for v in module.variables if not v.trainable]
    before = [v.numpy().copy() for v in stats]
    dim = ref["unnormalized_embeddings"].shape[1]
    weights = tf.constant(np.random.default_rng(0).standard_normal(dim), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(module(tf.constant(x), training=True) * weights)
    grads = tape.gradient(loss, module.trainable_variables)
    report["grads_missing_or_zero"] = [
        v.name for v, g in zip(module.trainable_variables, grads)
        if g is None or not np.any(g.numpy())]
    report["bn_stats_changed"] = sum(bool(np.any(b != v.numpy())) for b, v in zip(before, stats))
    report["num_bn_stats"] = len(stats)

    # hub.KerasLayer(trainable=True) fine-tunes: weights change and the loss falls.
    labels = data["labels"]
    tf_keras.utils.set_random_seed(0)
    layer = hub.KerasLayer(export_dir, trainable=True)
    model = tf_keras.Sequential([tf_keras.Input(shape=x.shape[1:]), layer,
                                 tf_keras.layers.Dense(int(labels.max()) + 1)])
    model.compile(optimizer=tf_keras.optimizers.SGD(0.05),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = [w.numpy().copy() for w in layer.trainable_weights]
    report["finetune_num_trainable"] = len(layer.trainable_weights)
    report["finetune_loss_before"] = float(model.evaluate(x, labels, batch_size=len(x), verbose=0))
    model.fit(x, labels, batch_size=len(x), epochs=20, verbose=0)
    report["finetune_loss_after"] = float(model.evaluate(x, labels, batch_size=len(x), verbose=0))
    report["finetune_weights_changed"] = sum(
        bool(np.any(s != w.numpy())) for s, w in zip(start, layer.trainable_weights))

    # The README's loading examples, as written (with the export's path).
    report["snippets"] = {}
    with open(snippets_path) as f:
        snippets = json.load(f)
    for name, code in snippets.items():
        namespace = {}
        exec(compile(code, f"README:{name}", "exec"), namespace)
        found = {k: list(np.shape(namespace[k])) for k in ("features", "embeddings")
                 if k in namespace}
        if "history" in namespace:
            found["loss"] = [float(l) for l in namespace["history"].history["loss"]]
        report["snippets"][name] = found

    report["supcon_tf_imported"] = any(m.split(".")[0] == "supcon_tf" for m in sys.modules)
    with open(out_path, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(*sys.argv[1:5])
