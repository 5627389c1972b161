"""`python -m tests.fakes` is the same as `python -m tests.fakes.provider_server`."""

from .provider_server import main

main()
