"""Per-variable learning-rate multipliers on any Keras optimizer (e.g. Proxy-Anchor's 100x).

Keras optimizers have one learning rate. `set_lr_multiplier` makes the optimizer's own
`update_step` see `multiplier * learning_rate` for the given variables, so the factor is
a true learning-rate multiplier for every update rule (SGD, Adam, LARS, ...; scaling
the gradient instead would be undone by Adam's normalization). It works in the
TensorFlow and JAX (stateless) steps: both call `update_step` per variable, and
variables are matched by the optimizer's own variable keys. Weight decay, applied
outside `update_step`, keeps the base rate. Calling it again for the same optimizer
updates the factors (it never wraps twice).
"""

from supcon_tf.validation import check_positive


def set_lr_multiplier(optimizer, variables, multiplier):
    """Trains `variables` with `optimizer` at `multiplier` times its learning rate."""
    check_positive("multiplier", multiplier)
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    factors = inner.__dict__.get("_lr_multipliers")
    if factors is None:
        factors = {}
        base_update = inner.update_step

        def update_step(gradient, variable, learning_rate):
            factor = factors.get(inner._var_key(variable))
            if factor is not None:
                learning_rate = learning_rate * factor
            return base_update(gradient, variable, learning_rate)

        inner.update_step = update_step
        inner.__dict__["_lr_multipliers"] = factors
    for variable in variables:
        factors[inner._var_key(variable)] = float(multiplier)
    return optimizer
