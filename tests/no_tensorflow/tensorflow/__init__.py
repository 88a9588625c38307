"""A stand-in that hides TensorFlow: put this folder first on PYTHONPATH and
``import tensorflow`` fails as on a machine without it (the GPU machines have JAX only)."""

raise ModuleNotFoundError("No module named 'tensorflow' (hidden by tests/no_tensorflow)",
                          name="tensorflow")
