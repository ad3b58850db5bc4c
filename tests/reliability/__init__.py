"""Faults and hostile input (issue 7 §2): checkpoints, killed and concurrent saves, fuzzed
uploads and CLI calls, and a bounded load test of the Streamlit server. See docs/RELIABILITY.md."""
