"""dlgm: replication pipeline for four papers where deep learning meets graphical models."""

__version__ = "0.1.0"
