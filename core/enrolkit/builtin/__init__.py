"""Plugins that ship with the core, registered like any other plugin."""
