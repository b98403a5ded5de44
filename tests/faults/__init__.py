"""The fault suite (issue 10): misbehaving endpoints (test_endpoint.py, test_waits.py, with
badserver.py and endpoint_run.py), bad input, signals, growth and an LSP fuzz; the figures
it measures are in docs/reliability.md."""
