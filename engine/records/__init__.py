"""The City's records: the audit chain, screenshots kept as evidence, secrets at rest."""
