"""Metrics registered in MMPose's ``METRICS`` registry."""
from .chirality_metric import ChiralityRate

__all__ = ['ChiralityRate']
