"""Built-in plugin 'sftp' (work in progress: registers nothing yet)."""
