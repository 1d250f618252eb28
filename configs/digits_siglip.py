r"""SigLIP on the bundled handwritten digits with template captions.

  supcon-tf --config=configs/digits_siglip.py --workdir=/tmp/digits_siglip
  supcon-tf --config=configs/digits_siglip.py:local --workdir=/tmp/smoke   # seconds

digits_clip.py with SigLIP's loss (Zhai et al., ICCV 2023): a sigmoid on every
image-caption pair instead of the batch-wide softmax, with a learnable temperature and
bias (initialized at 10 and -10); under a strategy it runs chunk by chunk over the other
replicas' captions. Everything else (towers, captions, evaluation, export) as there.
"""

import importlib.util
import os


def get_config(arg=None):
    """`arg`: None for the full run, "local" for a seconds-long smoke run."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits_clip.py")
    spec = importlib.util.spec_from_file_location("digits_clip", path)
    digits_clip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digits_clip)  # The sibling file, wherever configs/ is.
    return digits_clip.get_config(arg, loss="siglip")
