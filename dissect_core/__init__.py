"""CLIP-Dissect as a library: probe images, concepts, encoders, targets, activations, similarity, labels."""

__version__ = "0.1.0"
