"""The read side, below both faces (the API and the console): one package for every read.

live (the replica now, its data version and pin instant), as_of (as it stood
at an instant, and the history horizon), versions (one record's versions),
changes (what a sync changed), syncs (recorded syncs), paging (sort keys,
cursors, pins, read_page; its own CursorError), orderings (the sort keys of
each listing), serializers and json_sql (the JSON of each answer, written
by Python or by PostgreSQL). Nothing here knows HTTP: the faces turn its
results and errors into their own answers.
"""
