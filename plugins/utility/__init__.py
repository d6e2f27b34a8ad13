"""Built-in plugin 'utility' (work in progress: registers nothing yet)."""
