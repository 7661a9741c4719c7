"""facelabel: label faces in image folders (eyeglasses, beard, mustache, hat) into SQL."""

__version__ = "0.1.0"
