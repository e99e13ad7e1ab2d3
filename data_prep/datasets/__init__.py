"""One reader per database, for the layouts its users have on disk."""
