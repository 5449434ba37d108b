"""Runnable examples; the test suite smoke-runs each of them."""
