from .multi_optim_wrapper_constructor import Unsup3DOptimWrapperConstructor

__all__ = ['Unsup3DOptimWrapperConstructor']
