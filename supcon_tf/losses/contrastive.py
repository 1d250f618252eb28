"""The contrastive loss core: SupCon (class ids) and SimCLR/NT-Xent (instance ids).

One function, `contrastive_loss`, with the options and semantics of the official
SupCon TensorFlow implementation (Khosla et al. 2020, google-research `supcon`).
The masks are built once in `contrastive_masks`; the loss only reads them.
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite, check_labels, check_rank, check_unit_rows
from supcon_tf.validation import check_choice, check_number, check_positive

CONTRAST_MODES = ("all", "one")
SUMMATION_LOCATIONS = ("outside", "inside")
DENOMINATOR_MODES = ("all", "one_positive", "only_negatives")


def validate_options(temperature, contrast_mode, summation_location, denominator_mode,
                     positives_cap):
    """Raises ValueError for option values `contrastive_loss` does not accept."""
    check_positive("temperature", check_number("temperature", temperature))
    check_choice("contrast_mode", contrast_mode, CONTRAST_MODES)
    check_choice("summation_location", summation_location, SUMMATION_LOCATIONS)
    check_choice("denominator_mode", denominator_mode, DENOMINATOR_MODES)
    if not isinstance(positives_cap, int) or positives_cap < -1:
        raise ValueError(
            "`positives_cap` must be -1 (no cap) or an integer >= 0; "
            f"received positives_cap={positives_cap!r}."
        )


def _validate_inputs(features, labels, positives_cap):
    """Shape, dtype and (when known now) value checks of `features` and `labels`.

    Values are checked only for eager inputs, where it costs nothing extra; inside a
    compiled step a non-finite feature makes the loss NaN (never a finite number),
    which `fit` stops on (`supcon_tf.methods.guards`).
    """
    check_rank("features", features, 3, "[batch, num_views, dim]")
    batch, num_views = features.shape[0], features.shape[1]
    if batch == 0:
        raise ValueError(
            "`features` must hold at least one sample; received an empty batch of shape "
            f"{tuple(features.shape)}."
        )
    if num_views is None or num_views < 1:
        raise ValueError(
            "`features` must hold at least 1 view (shape [batch, num_views >= 1, dim]); "
            f"received shape {tuple(features.shape)}."
        )
    if positives_cap > -1 and positives_cap % num_views != 0:
        raise ValueError(
            f"`positives_cap` must be a multiple of num_views={num_views}; "
            f"received positives_cap={positives_cap}."
        )
    check_finite("features", features)
    check_unit_rows("features", features)
    if labels is None:
        return num_views
    if len(labels.shape) not in (1, 2):
        raise ValueError(
            "`labels` must be class ids [batch] or one-/multi-hot [batch, num_classes]; "
            f"received shape {tuple(labels.shape)}."
        )
    if batch is not None and labels.shape[0] is not None and labels.shape[0] != batch:
        raise ValueError(
            f"`labels` batch size ({labels.shape[0]}) must equal the features' "
            f"batch size ({batch}); received labels shape {tuple(labels.shape)} "
            f"and features shape {tuple(features.shape)}."
        )
    check_labels("labels", labels)
    return num_views


def positive_pair_mask(labels, global_labels, diagonal):
    """[local, global] float mask: 1 where two samples are positives of each other.

    Without labels only a sample itself is (SimCLR); with class ids or one-hot /
    multi-hot labels, samples that share a class are. A sample is always a
    positive of itself, so its own other views stay positives.
    """
    if labels is None:
        return diagonal
    if len(labels.shape) == 1:
        same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(global_labels, 0))
    else:
        labels = ops.cast(labels, "float32")
        shared = ops.matmul(labels, ops.transpose(ops.cast(global_labels, "float32")))
        same = ops.greater(shared, 0.0)
    return ops.maximum(ops.cast(same, diagonal.dtype), diagonal)


def cap_positives(mask, diagonal, num_views, positives_cap):
    """Keeps at most `positives_cap // num_views` other samples per anchor row.

    The kept ones are those with the lowest global batch index; the anchor itself
    (hence its other views) always stays.
    """
    per_anchor = positives_cap // num_views
    others = mask * (1.0 - diagonal)
    keep = ops.cast(ops.less_equal(ops.cumsum(others, axis=1), per_anchor), mask.dtype)
    return mask * ops.maximum(others * keep, diagonal)


# Keras 3.15's JAX `ops.mean` and `ops.logaddexp` round float64 inputs to float32;
# these two keep the input's dtype on every backend (the float64 reference checks).
def mean(x, axis):
    """`ops.mean(x, axis)` in x's own dtype."""
    return ops.sum(x, axis=axis) / ops.cast(ops.shape(x)[axis], x.dtype)


def logaddexp(a, b):
    """`log(exp(a) + exp(b))`, stable, in the inputs' dtype."""
    high = ops.maximum(a, b)
    return high + ops.log1p(ops.exp(-ops.abs(a - b)))


def masked_logsumexp(values, mask):
    """Row-wise log(sum(exp(values) * mask)), stable, and whether the row's mask is non-empty.

    Empty rows give 0 (callers zero those samples' loss). Masked-out entries never reach
    `exp`, so they cannot overflow (the self-similarity is the largest logit of a row).
    """
    selected = mask > 0
    row_max = ops.max(ops.where(selected, values, float("-inf")), axis=1, keepdims=True)
    nonempty = ops.any(selected, axis=1)
    row_max = ops.stop_gradient(ops.where(ops.expand_dims(nonempty, 1), row_max, 0.0))
    shifted = ops.where(selected, values - row_max, float("-inf"))
    total = ops.sum(ops.exp(shifted), axis=1)
    log_total = ops.log(ops.where(nonempty, total, 1.0))
    return ops.squeeze(row_max, 1) + log_total, nonempty


def contrastive_masks(mask, diagonal, num_views, num_anchor_views, positives_cap):
    """Tiles a [local, global] sample mask to [anchors, contrasts] view masks.

    Rows are ordered view-major (v * local + i), as are columns (w * global + j).
    Returns `(positives, negatives)`: positives are same-class views other than
    the anchor view itself (after the cap); negatives are other-class views.
    """
    negatives = 1.0 - ops.tile(mask, (num_anchor_views, num_views))
    if positives_cap > -1:
        mask = cap_positives(mask, diagonal, num_views, positives_cap)
    positives = ops.tile(mask, (num_anchor_views, num_views))
    # The anchor view itself: same sample (diagonal) and same view (block diagonal).
    eye_views = ops.eye(num_anchor_views, num_views, dtype=mask.dtype)
    self_view = ops.reshape(
        ops.expand_dims(ops.expand_dims(eye_views, 1), 3)
        * ops.expand_dims(ops.expand_dims(diagonal, 0), 2),
        ops.shape(positives),
    )
    return positives * (1.0 - self_view), negatives


def contrastive_loss(
    features,
    labels=None,
    *,
    temperature=0.07,
    contrast_mode="all",
    summation_location="outside",
    denominator_mode="all",
    positives_cap=-1,
    scale_by_temperature=True,
    block_size=None,
):
    """Per-sample supervised contrastive loss, shape [batch], float32.

    Args:
      features: [batch, num_views, dim] L2-normalized embeddings. float64 is kept
        (for checks against references); every other dtype is computed in float32.
      labels: class ids [batch], one-/multi-hot [batch, num_classes], or None
        (only a sample's other views are positives: SimCLR's NT-Xent).
      temperature: softmax temperature, > 0.
      contrast_mode: "all" (every view is an anchor) or "one" (view 0 only).
      summation_location: "outside" (L_out, Eq. 2 of the paper) or "inside" (L_in).
      denominator_mode: "all", "one_positive" or "only_negatives".
      positives_cap: -1, or the most positives per anchor other than its own views,
        a multiple of num_views.
      scale_by_temperature: multiply the loss by `temperature`.
      block_size: None (auto) computes the loss in blocks of anchors with
        `supcon_tf.losses.blocked` (same values, memory linear in the batch) when the
        options allow it, the batch size is static and anchors x contrasts >=
        `blocked.auto_threshold()` (where the blocked path was measured the faster: 2**24
        logits, e.g. 2,048 samples x 2 views; 2**18 on JAX's CPU backend); 0 never
        does; an integer >= 1 always does, with that many anchor views per block.

    Under a `tf.distribute` strategy the local samples are anchors against the
    features and labels of the global batch. An anchor without positives (or with an
    empty denominator) gets 0. Denominators are computed as masked log-sum-exp, equal
    to the official exp/log form but finite at any temperature.
    As in the official code, with a single view the loss is divided once more by
    the number of positives.
    """
    validate_options(temperature, contrast_mode, summation_location, denominator_mode,
                     positives_cap)
    features = ops.convert_to_tensor(features)
    labels = None if labels is None else ops.convert_to_tensor(labels)
    if block_size != 0:
        from supcon_tf.losses import blocked  # It imports this module.

        options = dict(temperature=temperature, contrast_mode=contrast_mode,
                       summation_location=summation_location,
                       denominator_mode=denominator_mode, positives_cap=positives_cap)
        if block_size is not None or blocked.auto_blocked(features, **options):
            return blocked.blocked_contrastive_loss(
                features, labels, scale_by_temperature=scale_by_temperature,
                block_size=block_size or blocked.DEFAULT_BLOCK_SIZE, **options)
    num_views = _validate_inputs(features, labels, positives_cap)
    dtype = "float64" if features.dtype == "float64" else "float32"
    features = ops.cast(features, dtype)

    local_batch = ops.shape(features)[0]
    global_features, offset = distribute.cross_replica_concat(features)
    global_batch = ops.shape(global_features)[0]
    diagonal = ops.one_hot(ops.arange(local_batch) + offset, global_batch, dtype=dtype)
    global_labels = None if labels is None else distribute.cross_replica_concat(labels)[0]
    mask = positive_pair_mask(labels, global_labels, diagonal)

    dim = ops.shape(features)[2]
    contrast = ops.reshape(ops.transpose(global_features, (1, 0, 2)), (-1, dim))
    if contrast_mode == "one":
        anchors, num_anchor_views = features[:, 0], 1
    else:
        anchors = ops.reshape(ops.transpose(features, (1, 0, 2)), (-1, dim))
        num_anchor_views = num_views
    positives, negatives = contrastive_masks(
        mask, diagonal, num_views, num_anchor_views, positives_cap)

    temperature = float(temperature)
    logits = ops.matmul(anchors, ops.transpose(contrast)) / temperature
    log_negatives, has_negative = masked_logsumexp(logits, negatives)
    if denominator_mode == "all":
        log_denominator, valid = masked_logsumexp(logits, positives + negatives)
    elif denominator_mode == "one_positive":
        log_denominator = ops.where(ops.expand_dims(has_negative, 1),
                                    logaddexp(logits, ops.expand_dims(log_negatives, 1)),
                                    logits)
        valid = ops.ones_like(has_negative, dtype="bool")
    else:
        log_denominator, valid = log_negatives, has_negative
    if len(log_denominator.shape) == 1:
        log_denominator = ops.expand_dims(log_denominator, 1)

    num_positives = ops.sum(positives, axis=1)
    has_positive = ops.logical_and(ops.greater(num_positives, 0.0), valid)
    log_ratio = logits - log_denominator  # log p_ik for every contrast k.
    if summation_location == "outside":
        log_prob = ops.sum(ops.where(positives > 0, log_ratio, 0.0), axis=1)
        log_prob = ops.divide_no_nan(log_prob, num_positives)
    else:
        log_sum, _ = masked_logsumexp(log_ratio, positives)
        log_prob = log_sum - ops.log(ops.maximum(num_positives, 1.0))
    loss = ops.where(has_positive, -log_prob, 0.0)
    if scale_by_temperature:
        loss = loss * temperature
    loss = ops.reshape(loss, (num_anchor_views, local_batch))
    if num_views != 1:
        return mean(loss, axis=0)
    return ops.divide_no_nan(loss[0], num_positives)
