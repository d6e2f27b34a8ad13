"""Built-in plugin 'pdf' (work in progress: registers nothing yet)."""
