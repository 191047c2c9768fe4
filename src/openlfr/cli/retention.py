"""``openlfr retention sweep``: delete what has reached the end of its retention period, at
the machine. :func:`register` adds the group to the main app."""

from __future__ import annotations

import typer

from openlfr.cli.store import at_machine
from openlfr.cli.support import user_errors

retention_app = typer.Typer(help="Delete what has reached the end of its retention period.", no_args_is_help=True)


@retention_app.command("sweep")
@user_errors
def retention_sweep() -> None:
    """Delete expired alerts, crops, footage and snapshots; expire agreements (each deletion audited)."""
    from openlfr.governance import retention

    with at_machine() as ctx:
        typer.echo(retention.sweep(ctx).summary())


def register(app: typer.Typer) -> None:
    """Add ``openlfr retention`` to the main app."""
    app.add_typer(retention_app, name="retention")
