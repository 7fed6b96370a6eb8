"""The day-to-day commands' answers (``utl breaks``, ``quarantine``, ``runs``, ``pnl``):
a module per question, each reading what it needs and formatting it for a terminal or as
CSV. ``utl.cli`` only parses options and prints."""
