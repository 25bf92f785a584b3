"""Accounts: users and roles, password hashing, API tokens, one-time login links, login sessions, throttled
password logins, who may change what."""
