"""Capture profiles without an agent: ``profscope record`` (py-spy) and self-profiling."""
