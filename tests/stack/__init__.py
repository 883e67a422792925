"""Whole-stack harness: private Redis + MariaDB + inference server + API on free loopback ports."""

from tests.stack.harness import Proc, Stack, StackError, free_port
from tests.stack.proxy import FaultProxy

__all__ = ["FaultProxy", "Proc", "Stack", "StackError", "free_port"]
