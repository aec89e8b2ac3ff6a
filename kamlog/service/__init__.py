"""`kamlog collect`: the long-running service that tails, captures, correlates and indexes continuously."""
