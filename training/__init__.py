"""The application on the keras_coordatt library: the paper's configs and experiment drivers, run from the repository."""
