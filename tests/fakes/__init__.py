"""Test doubles: the scripted model server helpers (`tests.fakes.server`)."""
