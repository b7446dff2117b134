"""Common part of the loss components: a weight and the key the loss is logged under."""
from torch import nn

__all__ = ['WeightedLoss']


class WeightedLoss(nn.Module):
    """Base of every loss component (MMPose style: ``loss_weight`` and ``loss_name``).

    Args:
        loss_weight: factor applied to the loss.
        loss_name: the key of the loss in the log (and in the loss dict the model sums).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """The log key of this loss."""
        return self._loss_name
