"""Exact answers by enumeration of every state, for tests and check scripts only (never imported by
the pipeline): the oracles the approximate algorithms are checked against."""
