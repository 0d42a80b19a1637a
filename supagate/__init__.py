"""supagate: the library and the CLI behind the supabase-platform Pulumi program."""

__version__ = "0.1.0"
