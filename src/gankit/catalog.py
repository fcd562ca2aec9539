"""Names of the built-in families and datasets, without importing torch.

The command line's help and argument errors use these, so ``gankit --help`` answers at once. A
test holds them equal to the registries they mirror (``gankit.models.MODELS``,
``gankit.data.DATASETS``).
"""

MODEL_NAMES = ("gan", "wgan", "wgan-gp", "cgan", "cyclegan", "discogan")
DATASET_NAMES = (
    "25gaussians",
    "8gaussians",
    "parallel-lines",
    "ring",
    "swissroll",
    "fashion-mnist",
    "mnist",
    "digits2colour",
    "edges2shoes-mini",
    "sneakers2boots",
    "discogan-toy",
)
