from supagate.cli import entry

entry()
