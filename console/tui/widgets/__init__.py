"""The console's widgets: the matrix (Line API), the status header, the trend lines."""
