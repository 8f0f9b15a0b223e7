"""suites/crash: Crash-freedom: a sustained concurrent load where nothing goes wrong, and the same engine after it."""
