"""The ``smallchain`` command line (``smallchain.cli.app:main``)."""
