"""Test kits for code built on zoo; imports pytest, so import it from tests only.

- :class:`PluginContract` (:mod:`zoo.testing.plugin_contract`): the contract tests a framework plugin
  must pass, run by its author (CONTRIBUTING.md, "Adding a plugin").
"""
from __future__ import annotations

from .plugin_contract import PluginContract

__all__ = ["PluginContract"]
