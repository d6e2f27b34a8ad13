"""Built-in plugin 'portal' (work in progress: registers nothing yet)."""
