from .elevation_predictor import ElevationPredictor

__all__ = ['ElevationPredictor']
