"""Safe file handling: bounded strict reads, atomic writes, limits, errors."""
