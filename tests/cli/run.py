#!/usr/bin/env python3
"""Run one command-line test case (meson registers each as its own test), or
--list them. Exit 0 pass, 1 fail, 77 skipped (meson's skip code)."""
import importlib
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODULES = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))


def all_ids():
    loader = unittest.TestLoader()
    for m in MODULES:
        suite = loader.loadTestsFromModule(importlib.import_module(m))
        for group in suite:
            for case in group:
                yield case.id()


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(all_ids()))
        return 0
    suite = unittest.TestLoader().loadTestsFromNames(sys.argv[1:])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.skipped and result.testsRun == len(result.skipped):
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
