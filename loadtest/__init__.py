"""Load and benchmark tools: the bench, locust, the chaos command, and probes."""
