"""Everything that sends Redis commands: the queue, its Lua scripts, the registry, the waits."""
