"""Repository-wide test configuration: our own tests drive the plugin through pytester."""

pytest_plugins = ["pytester"]
