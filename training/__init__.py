"""Runnable entry points: python -m training.train / evaluate / export / predict."""
