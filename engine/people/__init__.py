"""People: users and departments, logging in, API tokens, roles."""
