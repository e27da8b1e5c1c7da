"""Versions of a procedure: drafts, publishing, republishing and the differences between versions."""
