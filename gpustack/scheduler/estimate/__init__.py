"""Memory estimates of model files."""
