"""Shared test configuration: server fixtures are plugins under tests/fixtures."""

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.postgres"]
