"""The contrastive loss in bounded memory: anchors in blocks, logits recomputed backward.

`contrastive_loss` builds the full [anchors, contrasts] logits matrix and a few masks of
the same size, so its memory grows with the square of the number of views (65,536
views -> 17 GB per float32 matrix). `blocked_contrastive_loss` computes the same loss
`block_size` anchor rows at a time: the forward pass keeps only three numbers per
anchor (loss, log-denominator, number of positives) and a custom gradient recomputes
each block's logits in the backward pass, so peak memory is about
`block_size * contrasts` floats plus the embeddings themselves.

It equals `contrastive_loss` (forward and gradient, float32 to ~1e-6) for
`summation_location="outside"`, `denominator_mode` "all" or "only_negatives",
`positives_cap=-1`, either `contrast_mode`, any number of views, and labels that are
class ids, one-/multi-hot or None. Other options raise ValueError (`supports` says
which); `contrastive_loss(..., block_size=None)` only picks this path when they hold.
Under a `tf.distribute` strategy the local views are the anchors and the gathered
global views the contrasts, exactly as in the plain loss. With class ids or no labels the
positives' term, linear in the logits, comes from per-group sums of the contrasts
(`_grouped_rows`), so the blocks only compute the denominator's log-sum-exp and softmax.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.losses.contrastive import _validate_inputs, mean, validate_options

DEFAULT_BLOCK_SIZE = 1024
# `contrastive_loss(block_size=None)` switches to the blocked path from this many logits
# (anchor views x contrast views), chosen by measurement (`tools/bench_loss.py --floor`,
# value and gradient, 128-D, both paths alternated in one process; BENCHMARKS.md, issue 28):
# on TensorFlow the plain loss was the faster (or as fast) up to 1,024 views and the slower
# from 2,048 (2**22 logits); on JAX's CPU backend as fast at 16 and 32 views and the slower
# from 64 (2**12). Elsewhere (a GPU, not measured) the TensorFlow value.
AUTO_THRESHOLD = 2**22
AUTO_THRESHOLD_JAX_CPU = 2**12
# Contrasts per tile of the backward pass (`_column_block`): at most this many, so that a
# tile of logits (DEFAULT_BLOCK_SIZE x COLUMN_BLOCK float32, 8 MB) stays in cache.
COLUMN_BLOCK = 2048
SUPPORTED_SUMMATION = ("outside",)
SUPPORTED_DENOMINATORS = ("all", "only_negatives")


def supports(summation_location="outside", denominator_mode="all", positives_cap=-1,
             **unused_options):
    """Whether `blocked_contrastive_loss` computes these options (else use the plain loss)."""
    return (summation_location in SUPPORTED_SUMMATION
            and denominator_mode in SUPPORTED_DENOMINATORS and positives_cap == -1)


def auto_blocked(features, contrast_mode="all", **options):
    """Whether `contrastive_loss(block_size=None)` takes the blocked path for `features`.

    True when the options are supported, the batch size is static and the number of
    logits (anchor views x global contrast views) is at least `auto_threshold()`.
    """
    try:
        shape = tuple(features.shape)
    except ValueError:  # Unknown rank.
        return False
    if len(shape) != 3 or shape[0] is None or shape[1] is None or not supports(**options):
        return False
    anchor_views = 1 if contrast_mode == "one" else shape[1]
    contrasts = shape[0] * shape[1] * distribute.num_replicas_in_sync()
    return anchor_views * shape[0] * contrasts >= auto_threshold()


def auto_threshold():
    """The number of logits from which the blocked path is the faster one here (measured)."""
    if keras.backend.backend() == "jax":
        import jax

        if jax.default_backend() == "cpu":
            return min(AUTO_THRESHOLD, AUTO_THRESHOLD_JAX_CPU)
    return AUTO_THRESHOLD


def _loop(num_blocks, body, init):
    """A sequential loop over blocks: at most one block's logits alive at a time.

    TensorFlow's `while_loop` would otherwise run up to 10 iterations in parallel in
    graph mode (and hold 10 blocks of logits); JAX's loop is sequential already.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.while_loop(lambda i, value: i < num_blocks,
                             lambda i, value: (i + 1, body(i, value)),
                             (tf.constant(0), init), parallel_iterations=1)[1]
    return ops.fori_loop(0, num_blocks, body, init)


# On TensorFlow each loop over the blocks (forward, backward) is one XLA program, as it is
# inside `jax.jit`: the masks, the log-sum-exp and the gradient weights fuse into the
# passes over each block's logits, and the block buffers are reused across iterations
# instead of allocated afresh (page faults and system time). False: TensorFlow graph ops.
XLA_LOOPS = True
_COMPILED = {}


def _compiled(fn):
    """`fn` compiled by XLA on TensorFlow (one cached `tf.function` per loop); else `fn`."""
    if keras.backend.backend() != "tensorflow" or not XLA_LOOPS:
        return fn
    if fn not in _COMPILED:
        import tensorflow as tf

        _COMPILED[fn] = tf.function(fn, jit_compile=True, autograph=False)
    return _COMPILED[fn]


def _block(i, value, block_size):
    """Rows [i * block_size, (i + 1) * block_size) of `value`."""
    return ops.slice(value, (i * block_size,) + (0,) * (len(value.shape) - 1),
                     (block_size,) + tuple(value.shape[1:]))


def _block_masks(rows, cols, only_negatives):
    """Boolean (positives, denominator) masks of one block of anchor rows."""
    row_sample, row_view, row_label = rows
    col_sample, col_view, col_label = cols
    same_sample = ops.equal(ops.expand_dims(row_sample, 1), ops.expand_dims(col_sample, 0))
    same_view = ops.equal(ops.expand_dims(row_view, 1), ops.expand_dims(col_view, 0))
    pair = same_sample
    if row_label is not None and len(row_label.shape) == 1:
        pair = ops.logical_or(pair, ops.equal(ops.expand_dims(row_label, 1),
                                              ops.expand_dims(col_label, 0)))
    elif row_label is not None:
        shared = ops.matmul(row_label, ops.transpose(col_label))
        pair = ops.logical_or(pair, ops.greater(shared, 0.0))
    is_self = ops.logical_and(same_sample, same_view)
    positives = ops.logical_and(pair, ops.logical_not(is_self))
    denominator = ops.logical_not(pair if only_negatives else is_self)
    return positives, denominator


def _logits_and_masks(i, anchors, contrast, rows, cols, temperature, only_negatives,
                      block_size):
    """Block i's logits [block_size, contrasts] and its (positives, denominator) masks."""
    logits = ops.matmul(_block(i, anchors, block_size), ops.transpose(contrast)) / temperature
    block_rows = tuple(None if r is None else _block(i, r, block_size) for r in rows)
    return (logits,) + _block_masks(block_rows, cols, only_negatives)


def _row_log_sum_exp(logits, mask, rows_ok):
    """Each row's log(sum(exp(logits)) over `mask`), max-shifted; 0 where not `rows_ok`
    (rows with an empty mask must be among those). The blocks' one fused reduction."""
    row_max = ops.where(rows_ok, ops.max(ops.where(mask, logits, float("-inf")), axis=1), 0.0)
    total = ops.sum(ops.where(mask, ops.exp(logits - ops.expand_dims(row_max, 1)), 0.0), 1)
    return row_max + ops.log(ops.where(rows_ok, total, 1.0))


def _forward(anchors, contrast, rows, cols, temperature, only_negatives, block_size):
    """Per-anchor-row (loss, log-denominator or inf where invalid, number of positives)."""
    num_rows = anchors.shape[0]
    dtype = anchors.dtype

    def forward_block(i, state):
        losses, log_denominators, counts = state
        logits, positives, denominator = _logits_and_masks(
            i, anchors, contrast, rows, cols, temperature, only_negatives, block_size)
        has_den = ops.any(denominator, axis=1)
        log_den = _row_log_sum_exp(logits, denominator, has_den)
        count = ops.sum(ops.cast(positives, dtype), axis=1)
        positive_sum = ops.sum(ops.where(positives, logits, 0.0), axis=1)
        valid = ops.logical_and(has_den, count > 0)
        loss = ops.where(valid, log_den - positive_sum / ops.maximum(count, 1.0), 0.0)
        start = (i * block_size,)
        return (ops.slice_update(losses, start, loss),
                ops.slice_update(log_denominators, start,
                                 ops.where(valid, log_den, float("inf"))),
                ops.slice_update(counts, start, count))

    zeros = ops.zeros((num_rows,), dtype)
    return _loop(num_rows // block_size, forward_block, (zeros, zeros, zeros))


def _backward(anchors, contrast, rows, cols, log_denominators, counts, row_grad,
              temperature, only_negatives, block_size):
    """Gradients of sum(row_grad * loss) w.r.t. anchors and contrast, logits recomputed."""

    def backward_block(i, state):
        d_anchors, d_contrast_t = state
        logits, positives, denominator = _logits_and_masks(
            i, anchors, contrast, rows, cols, temperature, only_negatives, block_size)
        # An invalid row has log_den = inf: its softmax and gradient are 0.
        log_den = ops.expand_dims(_block(i, log_denominators, block_size), 1)
        softmax = ops.where(denominator, ops.exp(logits - log_den), 0.0)
        count = ops.expand_dims(_block(i, counts, block_size), 1)
        weight = softmax - ops.where(positives, 1.0 / ops.maximum(count, 1.0), 0.0)
        valid = ops.isfinite(log_den)
        weight = ops.where(valid, weight * ops.expand_dims(_block(i, row_grad, block_size), 1),
                           0.0)
        weight = weight / temperature
        return _weighted_products(i, weight, anchors, contrast, d_anchors, d_contrast_t,
                                  block_size)

    d_anchors, d_contrast_t = _loop(anchors.shape[0] // block_size, backward_block,
                                    _zero_grads(anchors, contrast))
    return d_anchors, ops.transpose(d_contrast_t)


def _zero_grads(anchors, contrast):
    """Initial (d_anchors, d_contrast transposed) of a backward loop."""
    return ops.zeros_like(anchors), ops.zeros_like(ops.transpose(contrast))


def _weighted_products(i, weight, anchors, contrast, d_anchors, d_contrast_t, block_size):
    """Adds block i's weight @ contrast to d_anchors and its anchors^T @ weight to d_contrast_t.

    The contrast gradient is kept transposed, [dim, contrasts]: anchors^T @ weight contracts
    the leading axes of both operands, a product the CPU kernels run about 0.6 floor passes
    per block faster than weight^T @ anchors (measured, JAX on CPU, 1,024 x 8,192 blocks).
    """
    d_block = ops.matmul(weight, contrast)
    d_contrast_t = d_contrast_t + ops.matmul(ops.transpose(_block(i, anchors, block_size)),
                                             weight)
    return ops.slice_update(d_anchors, (i * block_size, 0), d_block), d_contrast_t


def _blocked_rows(anchors, contrast, rows, cols, temperature, only_negatives, block_size):
    """Per-anchor-row [loss, num_positives] (shape [rows, 2]) with a recomputing gradient.

    `anchors` has a multiple of `block_size` rows. The loss of row i is
    logsumexp_{k in D_i} z_ik - mean_{k in P_i} z_ik with z = anchors @ contrast^T / t,
    or 0 when P_i or D_i is empty. Only `anchors` and `contrast` get gradients.
    """

    @ops.custom_gradient
    def rows_loss(anchors, contrast):
        # The gradient is `grad`'s: TensorFlow must not differentiate the loop itself.
        losses, log_denominators, counts = _compiled(_forward)(
            ops.stop_gradient(anchors), ops.stop_gradient(contrast), rows, cols, temperature,
            only_negatives, block_size)

        def grad(*upstream, **unused_variables):
            upstream = upstream[0]
            if isinstance(upstream, (tuple, list)):  # JAX passes the outputs' structure.
                upstream = upstream[0]
            return _compiled(_backward)(anchors, contrast, rows, cols, log_denominators,
                                        counts, upstream[:, 0], temperature, only_negatives,
                                        block_size)

        return ops.stack([losses, counts], axis=1), grad

    return rows_loss(anchors, contrast)


def _group_ids(keys):
    """Dense ids 0, 1, ... of the distinct values of the 1-D `keys` (equal keys, equal ids)."""
    order = ops.argsort(keys)
    ordered = ops.take(keys, order)
    first = ops.concatenate([ops.ones((1,), "int32"),
                             ops.cast(ops.not_equal(ordered[1:], ordered[:-1]), "int32")])
    return ops.take(ops.cast(ops.cumsum(first), "int32") - 1, ops.argsort(order))


def _grouped_masks(i, self_cols, row_ids, col_ids, only_negatives, block_size, j=0,
                   column_block=None):
    """Tile (i, j)'s (self, denominator) masks: anchor block i, contrast block j."""
    self_block = ops.expand_dims(_block(i, self_cols, block_size), 1)
    if column_block is None:
        column_block, tile_ids = ops.shape(col_ids)[0], col_ids
    else:
        tile_ids = _block(j, col_ids, column_block)
    columns = ops.arange(column_block, dtype="int32") + j * column_block
    is_self = ops.equal(self_block, ops.expand_dims(columns, 0))
    if only_negatives:
        return is_self, ops.not_equal(ops.expand_dims(_block(i, row_ids, block_size), 1),
                                      ops.expand_dims(tile_ids, 0))
    return is_self, ops.logical_not(is_self)


def _column_block(num_cols):
    """Contrasts per tile of the backward pass: a divisor of `num_cols` in
    [COLUMN_BLOCK / 2, COLUMN_BLOCK], or None (one tile: all of them, or an unknown count)."""
    if num_cols is None or num_cols <= COLUMN_BLOCK:
        return None
    return next((size for size in range(COLUMN_BLOCK, COLUMN_BLOCK // 2 - 1, -1)
                 if num_cols % size == 0), None)


def _grouped_log_denominators(anchors, contrast, self_cols, row_ids, col_ids, valid,
                              temperature, only_negatives, block_size):
    """Per-anchor-row log-sum-exp over its denominator (inf where the row is invalid)."""

    def forward_block(i, log_denominators):
        logits = ops.matmul(_block(i, anchors, block_size), ops.transpose(contrast))
        logits = logits / temperature
        denominator = _grouped_masks(i, self_cols, row_ids, col_ids, only_negatives,
                                     block_size)[1]
        row_valid = _block(i, valid, block_size)
        log_den = ops.where(row_valid, _row_log_sum_exp(logits, denominator, row_valid),
                            float("inf"))
        return ops.slice_update(log_denominators, (i * block_size,), log_den)

    return _loop(anchors.shape[0] // block_size, forward_block,
                 ops.zeros((anchors.shape[0],), anchors.dtype))


def _grouped_backward(anchors, contrast, self_cols, row_ids, col_ids, log_denominators,
                      row_scale, self_weight, temperature, only_negatives, block_size):
    """The tiles' part of the gradient: softmax weights and the self columns' +1/count.

    Tiles of `block_size` anchors x `_column_block` contrasts: a tile's logits and weights
    stay in cache between its three products (measured, JAX on CPU, 1,024 anchors x 16,384
    contrasts: 3.3 floor passes per row block untiled, 2.5 in tiles of 2,048 contrasts).
    """
    column_block = _column_block(contrast.shape[0])
    column_blocks = 1 if column_block is None else contrast.shape[0] // column_block

    def backward_tile(k, state):
        d_anchors, d_contrast_t = state
        i, j = k // column_blocks, k % column_blocks
        rows = _block(i, anchors, block_size)
        tile = contrast if column_block is None else _block(j, contrast, column_block)
        logits = ops.matmul(rows, ops.transpose(tile)) / temperature
        is_self, denominator = _grouped_masks(i, self_cols, row_ids, col_ids, only_negatives,
                                              block_size, j, column_block)
        log_den = ops.expand_dims(_block(i, log_denominators, block_size), 1)
        weight = ops.where(denominator, ops.exp(logits - log_den) * ops.expand_dims(
            _block(i, row_scale, block_size), 1), 0.0)
        weight = ops.where(is_self, ops.expand_dims(_block(i, self_weight, block_size), 1),
                           weight)
        d_rows = _block(i, d_anchors, block_size) + ops.matmul(weight, tile)
        d_tile = ops.matmul(ops.transpose(rows), weight)
        if column_block is None:
            d_contrast_t = d_contrast_t + d_tile
        else:
            start = (0, j * column_block)
            d_contrast_t = ops.slice_update(d_contrast_t, start, ops.slice(
                d_contrast_t, start, (d_contrast_t.shape[0], column_block)) + d_tile)
        return ops.slice_update(d_anchors, (i * block_size, 0), d_rows), d_contrast_t

    d_anchors, d_contrast_t = _loop(anchors.shape[0] // block_size * column_blocks,
                                    backward_tile, _zero_grads(anchors, contrast))
    return d_anchors, ops.transpose(d_contrast_t)


def _grouped_rows(anchors, contrast, self_cols, col_keys, temperature, only_negatives,
                  block_size):
    """`_blocked_rows` for positives that are one group per contrast (class ids, or samples).

    Column k is a positive of anchor row r when its key equals that of r's own column
    `self_cols[r]` (-1: a padding row), k itself excluded. The positives' part of the loss,
    -mean_{k in P_r} z_rk, is linear in the logits: it and its gradient come from per-group
    sums of the contrasts, with no [rows, contrasts] mask; the blocks only compute the
    log-sum-exp over the denominator and its softmax.
    """
    num_cols = ops.shape(contrast)[0]
    dtype = anchors.dtype
    col_ids = _group_ids(col_keys)
    real = ops.greater_equal(self_cols, 0)
    own_col = ops.where(real, self_cols, 0)
    row_ids = ops.take(col_ids, own_col)
    group_size = ops.take(ops.segment_sum(ops.ones_like(col_ids, dtype), col_ids, num_cols),
                          row_ids)
    counts = ops.where(real, group_size - 1.0, 0.0)
    num_den = ops.cast(num_cols, dtype) - (group_size if only_negatives else 1.0)
    valid = ops.logical_and(ops.logical_and(real, counts > 0), num_den > 0)
    counts_or_1 = ops.maximum(counts, 1.0)

    @ops.custom_gradient
    def rows_loss(anchors, contrast):
        anchors, contrast = ops.stop_gradient(anchors), ops.stop_gradient(contrast)
        # Each row's positives' contrasts summed: its group's sum less its own column.
        group_sums = ops.segment_sum(contrast, col_ids, num_cols)
        positives = ops.take(group_sums, row_ids, axis=0) - ops.take(contrast, own_col, axis=0)
        positive_mean = ops.sum(anchors * positives, axis=1) / (temperature * counts_or_1)
        log_denominators = _compiled(_grouped_log_denominators)(
            anchors, contrast, self_cols, row_ids, col_ids, valid, temperature,
            only_negatives, block_size)
        losses = ops.where(valid, log_denominators - positive_mean, 0.0)

        def grad(*upstream, **unused_variables):
            upstream = upstream[0]
            if isinstance(upstream, (tuple, list)):  # JAX passes the outputs' structure.
                upstream = upstream[0]
            row_grad = ops.where(valid, upstream[:, 0], 0.0)
            # d loss_r / d z_rk = softmax_rk - [k in P_r] / count_r, and
            # [k in P_r] = [same group] - [k is r's own column]: the blocks take the softmax
            # and the own column's +1/count, the group sums the rest.
            self_weight = row_grad / (counts_or_1 * temperature)
            d_anchors, d_contrast = _compiled(_grouped_backward)(
                anchors, contrast, self_cols, row_ids, col_ids, log_denominators,
                row_grad / temperature, self_weight, temperature, only_negatives, block_size)
            weighted = ops.expand_dims(self_weight, 1) * anchors
            d_anchors = d_anchors - ops.take(group_sums, row_ids, axis=0) * ops.expand_dims(
                self_weight, 1)
            d_contrast = d_contrast - ops.take(
                ops.segment_sum(weighted, row_ids, num_cols), col_ids, axis=0)
            return d_anchors, d_contrast

        return ops.stack([losses, counts], axis=1), grad

    return rows_loss(anchors, contrast)


def _pad_rows(x, rows, value):
    pad = [(0, rows - x.shape[0])] + [(0, 0)] * (len(x.shape) - 1)
    return ops.pad(x, pad, constant_values=value)


def blocked_contrastive_loss(
    features,
    labels=None,
    *,
    temperature=0.07,
    contrast_mode="all",
    summation_location="outside",
    denominator_mode="all",
    positives_cap=-1,
    scale_by_temperature=True,
    block_size=DEFAULT_BLOCK_SIZE,
):
    """`contrastive_loss` computed `block_size` anchor views at a time; shape [batch].

    Same arguments and result as `supcon_tf.losses.contrastive_loss` for the options
    `supports` accepts (ValueError otherwise). The batch size must be static.
    """
    validate_options(temperature, contrast_mode, summation_location, denominator_mode,
                     positives_cap)
    if not supports(summation_location, denominator_mode, positives_cap):
        raise ValueError(
            "blocked_contrastive_loss supports summation_location in "
            f"{SUPPORTED_SUMMATION}, denominator_mode in {SUPPORTED_DENOMINATORS} and "
            f"positives_cap=-1; received summation_location={summation_location!r}, "
            f"denominator_mode={denominator_mode!r}, positives_cap={positives_cap!r}. "
            "Use contrastive_loss for the other options."
        )
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"`block_size` must be an integer >= 1; received {block_size!r}.")
    features = ops.convert_to_tensor(features)
    labels = None if labels is None else ops.convert_to_tensor(labels)
    num_views = _validate_inputs(features, labels, positives_cap)
    local_batch = features.shape[0]
    if local_batch is None:
        raise ValueError("blocked_contrastive_loss needs a static batch size; received "
                         f"features of shape {tuple(features.shape)}.")
    dtype = "float64" if features.dtype == "float64" else "float32"
    features = ops.cast(features, dtype)
    global_features, offset = distribute.cross_replica_concat(features)
    global_batch = ops.shape(global_features)[0]
    global_labels = None if labels is None else distribute.cross_replica_concat(labels)[0]
    if labels is not None and len(labels.shape) == 2:
        labels, global_labels = ops.cast(labels, dtype), ops.cast(global_labels, dtype)

    dim = features.shape[2]
    num_anchor_views = 1 if contrast_mode == "one" else num_views
    anchors = ops.reshape(ops.transpose(features[:, :num_anchor_views], (1, 0, 2)), (-1, dim))
    contrast = ops.reshape(ops.transpose(global_features, (1, 0, 2)), (-1, dim))
    num_rows = num_anchor_views * local_batch
    block_size = min(block_size, num_rows)
    padded = -(-num_rows // block_size) * block_size

    # Rows and columns are view-major (v * batch + i), as in the plain loss.
    sample_ids = ops.arange(local_batch, dtype="int32") + ops.cast(offset, "int32")
    rows = (ops.tile(sample_ids, (num_anchor_views,)),
            ops.repeat(ops.arange(num_anchor_views, dtype="int32"), local_batch),
            None if labels is None else ops.tile(labels, (num_anchor_views,)
                                                 + (1,) * (len(labels.shape) - 1)))
    cols = (ops.tile(ops.arange(global_batch, dtype="int32"), (num_views,)),
            ops.repeat(ops.arange(num_views, dtype="int32"), global_batch),
            None if labels is None else ops.tile(global_labels, (num_views,)
                                                 + (1,) * (len(labels.shape) - 1)))
    rows = (_pad_rows(rows[0], padded, -1), _pad_rows(rows[1], padded, -1),
            None if labels is None else _pad_rows(rows[2], padded, -1 if len(
                labels.shape) == 1 else 0))
    only_negatives = denominator_mode == "only_negatives"
    if labels is None or len(labels.shape) == 1:  # One group per contrast: its class or sample.
        self_cols = (ops.repeat(ops.arange(num_anchor_views, dtype="int32"), local_batch)
                     * ops.cast(global_batch, "int32")
                     + ops.tile(sample_ids, (num_anchor_views,)))
        result = _grouped_rows(_pad_rows(anchors, padded, 0), contrast,
                               _pad_rows(self_cols, padded, -1),
                               cols[0] if labels is None else cols[2], float(temperature),
                               only_negatives, block_size)
    else:
        result = _blocked_rows(_pad_rows(anchors, padded, 0), contrast, rows, cols,
                               float(temperature), only_negatives, block_size)
    loss = result[:num_rows, 0]
    num_positives = ops.stop_gradient(result[:num_rows, 1])
    if scale_by_temperature:
        loss = loss * float(temperature)
    loss = ops.reshape(loss, (num_anchor_views, local_batch))
    if num_views != 1:
        return mean(loss, axis=0)
    return ops.divide_no_nan(loss[0], num_positives)
