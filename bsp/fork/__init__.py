"""The fork backend: ranks are processes forked from the launching process,
exchanging data through shared memory (see `launcher`, `transport`)."""
