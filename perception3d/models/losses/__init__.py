"""Losses shared by the models."""
from .lovasz import LovaszLoss

__all__ = ["LovaszLoss"]
