"""Compute kernels SAM 2 and SAM 3 share: products, attention, threads."""
