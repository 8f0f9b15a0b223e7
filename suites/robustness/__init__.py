"""suites/robustness: Bad inputs that have crashed vLLM servers in the field: each must be refused cleanly."""
