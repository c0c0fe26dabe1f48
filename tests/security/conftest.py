"""The attacks of issue 12, each written as a test. Fixtures shared by several attack modules
live here; those of one module stay in it."""
