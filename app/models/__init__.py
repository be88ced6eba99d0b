"""Model files and devices: the official checkpoints, their download, devices."""
