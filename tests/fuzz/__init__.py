"""The fuzz suite: malformed input to every ``fpim`` subcommand and every file a user hands in.

``cases.py`` holds the table of hand-written cases (``python -m tests.fuzz.cases`` prints
their count per category), ``harness.py`` runs the CLI in-process and checks what every
refusal must look like, ``test_table.py`` runs the table and ``test_generated.py`` the
hypothesis-generated inputs.
"""
