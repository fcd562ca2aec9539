"""gankit: the classic GAN family, trainable, measurable and trustworthy on an ordinary machine."""

__version__ = "0.1.0"
