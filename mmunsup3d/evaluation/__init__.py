"""Evaluation uses MMPose's own ``MPJPE`` metric unchanged; helpers format its results."""
from .report import format_mpjpe_results

__all__ = ['format_mpjpe_results']
