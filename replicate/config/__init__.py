"""Parameter schemas, one module per params.yaml section (`validate(merged, where) -> dict`): replicate.params
validates every section it loads against its schema, so that an unknown key, a missing key or a wrong type is a
one-line error naming the file, the section and the key (see _schema.py for how a schema is written)."""
