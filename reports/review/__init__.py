"""Report review: what the stored reports say, in plain words, with the correlation behind them.

Under `reports` below the alerts, which raise incidents from its findings; above the entry
points, whose blueprints and CLI groups its routes and commands join.
"""
