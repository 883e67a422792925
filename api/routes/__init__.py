"""HTTP routes: thin handlers over services."""
