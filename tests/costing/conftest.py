import decimal

# The tests' own arithmetic (positions, flows) must be exact: 1e12 - 1e-18 needs 31 digits,
# more than Python's default 28-digit context keeps.
decimal.getcontext().prec = 120
