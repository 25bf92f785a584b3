"""Accounts: users and roles, password hashing, API tokens, one-time login links, who may change what."""
