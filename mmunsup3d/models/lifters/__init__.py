from .residual_lifter import ResidualLifter

__all__ = ['ResidualLifter']
