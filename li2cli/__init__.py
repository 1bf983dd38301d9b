"""The ``li2`` command line: sees li2core (train, sweep) and the server (serve)."""
