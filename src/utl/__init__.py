"""UTL: the Universal Transaction Ledger."""
