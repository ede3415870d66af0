"""kv-bench: the load generator (installed as the package ``kvbench``)."""
