"""The ``orra`` commands, one module per command group (registered by :mod:`orra_cli.app`)."""
