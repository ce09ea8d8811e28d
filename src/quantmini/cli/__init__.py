"""The ``quantmini`` command line: click groups rendering library results with rich."""
