"""Scenario packs, one module per system under test."""
