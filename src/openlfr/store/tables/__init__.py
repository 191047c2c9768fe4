"""The governance store's tables, one module per domain (SQLAlchemy 2 declarative models).

- :mod:`.base`: the declarative base and the constraint naming convention;
- :mod:`.parties`: organisations, users, enrolment tokens, passwords, API tokens, login throttle;
- :mod:`.sharing`: data-sharing agreements, shared images, the sharing ledger;
- :mod:`.watchlists`: watchlists and their entries;
- :mod:`.deployments`: cameras, signage checks, deployments and their frozen snapshots;
- :mod:`.alerts`: alerts, their media, details, reviews, outcomes and escalations;
- :mod:`.pipeline`: the live pipeline's counters and camera gaps, checkpoints, owners, status;
- :mod:`.audit`: the hash-chained audit log, its head and signed checkpoints;
- :mod:`.rights`: erasure keys, people's rights requests and findings, legal holds.

Each module imports only the base and column types; relationships name their targets by
class name. Importing this package imports them all, so the mapper registry knows every
class whichever table is used first. :mod:`openlfr.store.models` re-exports every table.
"""

# each module adds its tables to Base.metadata when imported
import openlfr.store.tables.alerts  # noqa: F401
import openlfr.store.tables.audit  # noqa: F401
import openlfr.store.tables.deployments  # noqa: F401
import openlfr.store.tables.parties  # noqa: F401
import openlfr.store.tables.pipeline  # noqa: F401
import openlfr.store.tables.rights  # noqa: F401
import openlfr.store.tables.sharing  # noqa: F401
import openlfr.store.tables.watchlists  # noqa: F401
