"""Adversarial objectives for the generator (lifter, adapter) and the discriminators."""
import torch
import torch.nn.functional as F
from torch import Tensor

from mmpose.registry import MODELS
from .base_loss import WeightedLoss

__all__ = ['GANLoss']


@MODELS.register_module()
class GANLoss(WeightedLoss):
    """GAN objective on discriminator logits.

    ``vanilla``: binary cross-entropy on logits; ``lsgan``: least squares towards 1 (real) and
    0 (fake); ``hinge``: ``relu(1 - l)`` for real and ``relu(1 + l)`` for fake logits on the
    discriminator side, ``-l`` for the generator.

    The generator term is ``loss_weight * loss(fake logits, real)``. The discriminator term
    (:meth:`discriminator_loss`) is ``(loss(real, real) + loss(fake, fake)) / 2``, unweighted:
    the discriminator has an optimizer of its own, whose learning rate sets its step size.

    Args:
        gan_type: ``'vanilla'``, ``'lsgan'`` or ``'hinge'``.
        loss_weight: weight of the loss.
        loss_name: log key of the generator term (``loss_adv``; ``loss_temporal``,
            ``loss_adapter`` for the other adversarial terms).
    """

    GAN_TYPES = ('vanilla', 'lsgan', 'hinge')

    def __init__(self, gan_type: str = 'vanilla', loss_weight: float = 1.0,
                 loss_name: str = 'loss_adv') -> None:
        super().__init__(loss_weight, loss_name)
        if gan_type not in self.GAN_TYPES:
            raise ValueError(f'gan_type must be one of {self.GAN_TYPES}, got {gan_type!r}')
        self.gan_type = gan_type


    def _loss(self, logits: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        if self.gan_type == 'vanilla':
            target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.gan_type == 'lsgan':
            return (logits - (1.0 if target_is_real else 0.0)).pow(2).mean()
        if for_discriminator:
            return F.relu(1.0 - logits).mean() if target_is_real else \
                F.relu(1.0 + logits).mean()
        return -logits.mean()  # hinge generator term

    def forward(self, fake_logits: Tensor) -> Tensor:
        """Generator term: make the discriminator call fakes real.

        Args:
            fake_logits: ``(B,)`` (or any shape) discriminator logits of generated samples.

        Returns:
            Scalar loss; 0 (with a graph) for an empty batch.
        """
        if not fake_logits.numel():
            return fake_logits.sum()
        return self.loss_weight * self._loss(fake_logits, True, for_discriminator=False)

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator term: real logits towards real, fake logits towards fake.

        Args:
            real_logits: ``(B_r,)`` logits of real samples.
            fake_logits: ``(B_f,)`` logits of generated samples.

        Returns:
            Scalar loss.
        """
        return 0.5 * (self._loss(real_logits, True, for_discriminator=True) +
                      self._loss(fake_logits, False, for_discriminator=True))
