"""Built-in plugin 'xml_einvoice' (work in progress: registers nothing yet)."""
