"""Packaging: everything is in setup.cfg, except copying schema.sql into the package.

schema.sql lives at the repository root (where people look for it); an installed package needs its
own copy beside db.py, which expensebot.db.SCHEMA_PATH finds first.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithSchema(build_py):
    def run(self):
        super().run()
        # An editable install builds into an empty folder (the package stays in the checkout, where
        # SCHEMA_PATH finds the root schema.sql): make the folder rather than fail.
        package = Path(self.build_lib) / "expensebot"
        self.mkpath(str(package))
        self.copy_file(str(ROOT / "schema.sql"), str(package / "schema.sql"))


setup(cmdclass={"build_py": BuildWithSchema})
