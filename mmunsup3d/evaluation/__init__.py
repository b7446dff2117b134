"""Evaluation: MMPose's own ``MPJPE`` metric unchanged, the label-free ``ChiralityRate``
metric, and helpers that format their results."""
from .metrics import ChiralityRate
from .report import format_chirality_rate, format_mpjpe_results

__all__ = ['ChiralityRate', 'format_chirality_rate', 'format_mpjpe_results']
