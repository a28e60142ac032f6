"""Messages and stubs of the `pulsyon.v1` API, generated from proto/ (scripts/gen-python.sh)."""
