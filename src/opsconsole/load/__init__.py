"""Load and traffic generators (relay canaries now; open-loop generators later)."""
