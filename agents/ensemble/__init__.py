"""Ensembles in the agents layer (issue 6): members selected by an RL agent, and agents combined into one."""
