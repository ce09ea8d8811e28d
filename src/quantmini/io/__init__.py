"""I/O adapters: sources, lake storage, Parquet, Qlib files, DuckDB. Third-party errors are mapped here."""
