"""openlfr.matching: the similarity scale and exact 1:N search (:class:`~openlfr.matching.index.TemplateIndex`).

No watchlist is kept here: templates of listed people exist only in a deployment's frozen,
encrypted snapshot and reach matching code only through
:func:`openlfr.governance.deployments.live_watchlist`.
"""
