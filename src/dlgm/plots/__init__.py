"""Figures of each paper: drawing functions take data, never paths."""
