"""The frame canvas, its views and its tools (points, brush, eraser)."""
