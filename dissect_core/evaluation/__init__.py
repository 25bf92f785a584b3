"""Measuring labels: out-of-fold simulation scores, significance, and multi-concept explanations."""
