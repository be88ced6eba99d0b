"""The worker side: the inference worker, its client and its messages."""
