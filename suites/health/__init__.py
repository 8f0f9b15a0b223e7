"""suites/health: Is the deployment up and speaking vLLM's API as the profile says it should?"""
