"""Tests of the pure scheduler pipeline and the GGUF estimate."""
