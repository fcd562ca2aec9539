"""The GAN families, one file each: ``MODELS[name]`` is the class, ``.Config`` its config."""

from gankit.models.base import GANModel
from gankit.models.cgan import CGAN
from gankit.models.cyclegan import CycleGAN
from gankit.models.discogan import DiscoGAN
from gankit.models.gan import GAN
from gankit.models.wgan import WGAN
from gankit.models.wgan_gp import WGANGP

MODELS: dict[str, type[GANModel]] = {
    "gan": GAN,
    "wgan": WGAN,
    "wgan-gp": WGANGP,
    "cgan": CGAN,
    "cyclegan": CycleGAN,
    "discogan": DiscoGAN,
}
