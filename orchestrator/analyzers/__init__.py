"""Built-in analyzers: pure-CPU checks over a parsed `ast.Module`, stdlib only."""
