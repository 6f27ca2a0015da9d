"""What any layer may use: argument checks that raise at the call site
(`argument_checks`), the user's call site for messages and profiles
(`callsite`), and files written atomically, never through a planted link
(`atomic_files`).  Imports nothing of pybsp."""
