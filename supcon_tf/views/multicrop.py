"""`MultiCrop`: SwAV's global and local crops, as a tuple of view groups of two sizes.

Caron et al. (2020, Sec. 3.2) train on 2 global crops (224x224, 14-100% of the
image area) and V small ones (96x96, 5-14%), with the same colour and blur
augmentations on every crop. Each group is a `MultiView` of an augmentation
policy (`supcon_tf.views.policies`) whose random resized crop
(`supcon_tf.views.crop.RandomResizedCrop`) draws the group's scale and size, so it
works in `tf.data` on the host and inside a compiled step like every augmenter.
"""

from supcon_tf.registry import register
from supcon_tf.views.base import DataLayer, check_range, check_size, to_unit_float
from supcon_tf.views.multiview import MultiView
from supcon_tf.views.policies import POLICIES


def check_scale(name, value):
    """A crop area range (min, max) with 0 < min <= max <= 1."""
    scale = check_range(name, value, 0.0, 1.0)
    if scale[0] <= 0.0:
        raise ValueError(f"`{name}` must be a pair (min, max) with 0 < min <= max <= 1; "
                         f"received {name}={value!r}.")
    return scale


def _check_count(name, value, minimum):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; received {name}={value!r}.")
    return value


@register
class MultiCrop(DataLayer):
    """images [b, H, W, C] -> (global [b, num_global, *global_size, C],
    local [b, num_local, *local_size, C]); one image -> a tuple of [V, h, w, C].

    `policy` names the augmentation recipe applied to every crop (its crop takes
    the group's `*_scale` as its `area_range`); `policy_kwargs` are its other
    arguments. With `num_local=0` the tuple holds the global group alone.
    """

    def __init__(self, global_size=(224, 224), local_size=(96, 96), num_global=2,
                 num_local=6, global_scale=(0.14, 1.0), local_scale=(0.05, 0.14),
                 policy="simclr", policy_kwargs=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.global_size = check_size("global_size", global_size)
        self.local_size = check_size("local_size", local_size)
        self.num_global = _check_count("num_global", num_global, 2)
        self.num_local = _check_count("num_local", num_local, 0)
        self.global_scale = check_scale("global_scale", global_scale)
        self.local_scale = check_scale("local_scale", local_scale)
        self.policy = policy
        self.policy_kwargs = dict(policy_kwargs or {})
        for reserved in ("image_size", "area_range", "seed"):
            if reserved in self.policy_kwargs:
                raise ValueError(f"`policy_kwargs` must not set {reserved!r} (MultiCrop sets "
                                 f"it per group); received policy_kwargs={policy_kwargs!r}.")
        self.seed = seed
        local_seed = None if seed is None else seed + 1000
        self.global_views = MultiView(self._policy(self.global_size, self.global_scale, seed),
                                      self.num_global)
        self.local_views = None
        if self.num_local:
            self.local_views = MultiView(
                self._policy(self.local_size, self.local_scale, local_seed), self.num_local)

    def _policy(self, size, scale, seed):
        return POLICIES.get(self.policy, image_size=size, area_range=scale, seed=seed,
                            **self.policy_kwargs)

    @property
    def num_views(self):
        return self.num_global + self.num_local

    def build(self, input_shape):
        for group in (self.global_views, self.local_views):
            if group is not None and not group.built:
                group.build(input_shape)

    def __call__(self, images, training=True, **kwargs):
        return super().__call__(to_unit_float(images), training=training, **kwargs)

    def call(self, images, training=True):
        groups = [self.global_views(images, training=training)]
        if self.local_views is not None:
            groups.append(self.local_views(images, training=training))
        return tuple(groups)

    def compute_output_shape(self, input_shape):
        shapes = [self.global_views.compute_output_shape(input_shape)]
        if self.local_views is not None:
            shapes.append(self.local_views.compute_output_shape(input_shape))
        return tuple(tuple(s) for s in shapes)

    def get_config(self):
        config = super().get_config()
        config.update(global_size=self.global_size, local_size=self.local_size,
                      num_global=self.num_global, num_local=self.num_local,
                      global_scale=self.global_scale, local_scale=self.local_scale,
                      policy=self.policy, policy_kwargs=self.policy_kwargs, seed=self.seed)
        return config
