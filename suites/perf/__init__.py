"""suites/perf: Throughput: a barrier-synchronised concurrency sweep with exact-token prompts, held to floors."""
