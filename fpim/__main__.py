"""``python -m fpim`` runs the CLI."""

from fpim.cli import main

raise SystemExit(main())
