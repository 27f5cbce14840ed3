"""KTRDR-shaped example application used to test the ktrdr-images frontend."""

__version__ = "1.0.7"
