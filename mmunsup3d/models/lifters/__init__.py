from .flat_depth import FlatDepthLifter
from .residual_lifter import ResidualLifter

__all__ = ['ResidualLifter', 'FlatDepthLifter']
