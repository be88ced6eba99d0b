"""SAM 2 / 2.1's network, one module per paper component."""
