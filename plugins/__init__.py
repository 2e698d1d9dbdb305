"""zoo's built-in framework plugins (PyTorch, TensorFlow), discovered through entry points."""
