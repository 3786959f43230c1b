"""The fused Lava process (``process.FusedNetwork``), in a package of its own: Lava searches the
directory of a process's module for its ProcessModels, executing every file there."""
