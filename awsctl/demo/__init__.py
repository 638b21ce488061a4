"""The embedded default story behind `awsctl demo` / `make demo`."""
