"""Built-in plugin 'csv' (work in progress: registers nothing yet)."""
