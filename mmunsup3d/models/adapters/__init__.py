from .domain_adapter import PoseDomainAdapter2D, coco_to_h36m_matrix

__all__ = ['PoseDomainAdapter2D', 'coco_to_h36m_matrix']
