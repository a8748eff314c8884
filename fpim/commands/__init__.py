"""One module per ``fpim`` subcommand, each with ``register(subparsers)``."""
