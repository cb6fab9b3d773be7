"""Thin HTTP routers: one service call per handler."""
