"""boneage: cohort-scale pediatric bone-age estimation from hand radiographs."""

__version__ = "0.1.0"
