"""suites/needle: Needle in a haystack: the post's secret code hidden in a long prompt, asked for at the end."""
