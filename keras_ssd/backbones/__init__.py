"""Backbones: feature extractors that feed SSD's source maps."""
