"""Outgoing comm traffic: the rate budget, the merge rule of widget updates, the sender."""
