"""The shipped suites, installed as ``pytest_gx10.suites``: ``pytest --pyargs pytest_gx10.suites``.

In a clone the same files run as ``pytest suites/...``. They run non-destructive first, however the
paths were given: health, image, mtp, perf, needle, then crash and robustness.
"""
