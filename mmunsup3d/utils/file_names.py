"""What a checkpoint's file name says about its contents."""
import re
from typing import Optional

__all__ = ['hash_prefix_of']

#: The sha256 prefix a checkpoint's file name carries: ``-<hex>`` before the extension
#: (``resnet50-0676ba61.pth``) or before OpenMMLab's date suffix (``...-e48f03d0_20230504.pth``).
_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})(?:_\d{8})?\.[A-Za-z0-9]+$')


def hash_prefix_of(filename: str) -> Optional[str]:
    """The sha256 prefix an OpenMMLab / torch hub file name carries, or ``None``.

    ``rtmpose-m_..._420e-256x192-e48f03d0_20230504.pth`` -> ``e48f03d0``;
    ``resnet50-0676ba61.pth`` -> ``0676ba61``; ``model.pth`` -> ``None``.
    """
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None
