"""The registry's rules (pure: no I/O library, no adapter, handler or entrypoint).

- :mod:`.records`: what a valid enterprise or production is, and how a patch applies;
- :mod:`.patches`: the published shape of those merge patches;
- :mod:`.regions`: the shipped GB/T 2260 region table;
- :mod:`.versions`: ``If-Match`` and the optimistic version check;
- :mod:`.api_keys`: what a key looks like, whom it binds, how it is revoked;
- :mod:`.events`: the events a change emits (full snapshots);
- :mod:`.import_files`: JSON Lines or CSV files into rows;
- :mod:`.import_validation`: a chunk of import rows validated into compact tuples;
- :mod:`.errors`: what a use case refuses with.
"""
