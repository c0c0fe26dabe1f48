"""Generate an Alembic migration for the core or for one plugin's branch.

    .venv/bin/python scripts/make_migration.py core "add a column"
    .venv/bin/python scripts/make_migration.py enrol_flatfile "initial tables" --tables flatfile_files,...

A plugin's first migration starts its own branch (label = the distribution name) that depends on
the core's first revision; later ones extend it. The database used for the comparison is a
throwaway SQLite file upgraded to the current heads.
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from enrolkit import db
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("branch", help="'core' or a plugin package such as enrol_flatfile")
    parser.add_argument("message")
    parser.add_argument("--tables", help="comma-separated tables of the plugin", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugins = Plugins()
        plugins.load_all()  # the plugins' code, models included, loads on first use
        runtime = Runtime(f"sqlite:///{tmp}/gen.db", plugins)
        folders = runtime.plugins.migration_folders()
        runtime.upgrade()
        config = db.alembic_config(runtime.db, folders)
        if args.branch == "core":
            # Plugins' branches are heads too: extend the core's own.
            script = ScriptDirectory.from_config(config)
            versions = Path(db.__file__).parent / "migrations" / "versions"
            head = next(
                h
                for h in script.get_heads()
                if Path(script.get_revision(h).path).parent == versions
            )
            command.revision(
                config,
                message=args.message,
                autogenerate=True,
                head=head,
                version_path=str(versions),
            )
            return
        package = importlib.import_module(args.branch)
        folder = Path(package.__file__).parent / "migrations"
        folder.mkdir(exist_ok=True)
        if str(folder) not in folders:
            config.set_main_option(
                "version_locations",
                config.get_main_option("version_locations") + os.pathsep + str(folder),
            )
        config.attributes["only_tables"] = set(filter(None, args.tables.split(",")))
        heads = ScriptDirectory.from_config(config).get_heads()
        branch_head = next((h for h in heads if args.branch in _labels(config, h)), None)
        command.revision(
            config,
            message=args.message,
            autogenerate=True,
            version_path=str(folder),
            head=f"{args.branch}@head" if branch_head else "base",
            branch_label=None if branch_head else args.branch,
            depends_on=None if branch_head else "0001",
        )


def _labels(config, revision: str) -> set[str]:
    return set(ScriptDirectory.from_config(config).get_revision(revision).branch_labels)


if __name__ == "__main__":
    main()
