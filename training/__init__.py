"""Training and demos for keras-coordatt."""
