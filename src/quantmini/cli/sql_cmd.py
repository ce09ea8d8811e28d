"""``quantmini sql``: one read-only SQL query over the lake's DuckDB views, as a table, CSV, JSON or Parquet.

CSV, JSON and Parquet are streamed from DuckDB a batch at a time, so an answer larger than memory can be
written to a file. The table format reads the first rows only.
"""

from __future__ import annotations

from pathlib import Path

import click

from quantmini.cli.options import TABLE_ROW_LIMIT, answer_options, data_root_option


@click.command("sql")
@click.argument("statement")
@answer_options
@data_root_option
def sql(statement: str, output_format: str, output: Path | None, data_root: Path | None) -> None:
    """Run one read-only SQL STATEMENT (SELECT, or EXPLAIN) against the lake's views: silver_stocks_daily,
    adjusted_stocks_daily, stocks_daily_alpha158, entities, universes, ref_splits … (`SHOW TABLES` lists
    them; docs/data-layout.md describes each)."""
    import sys

    import polars as pl
    import pyarrow as pa
    from rich.console import Console

    from quantmini.cli.query_render import render_table
    from quantmini.config import load_settings
    from quantmini.query.lake_sql import sql_batches
    from quantmini.query.output import write_batches

    root = load_settings({"data_root": data_root}).data_root
    with sql_batches(root, statement) as reader:
        if output_format == "table":
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > TABLE_ROW_LIMIT:
                    break
            frame = pl.from_arrow(pa.Table.from_batches(batches, schema=reader.schema))
            assert isinstance(frame, pl.DataFrame)
            console = Console(highlight=False, soft_wrap=False)
            if frame.columns == ["explain_key", "explain_value"]:  # EXPLAIN: DuckDB's plan as it draws it
                for plan in frame["explain_value"]:
                    console.print(plan, markup=False, highlight=False)
            elif frame.is_empty():
                console.print("(no rows)")
            else:
                render_table(frame.head(TABLE_ROW_LIMIT), console, TABLE_ROW_LIMIT)
                if frame.height > TABLE_ROW_LIMIT:
                    console.print("… more rows (use --format csv or --output to see all)")
            return
        written = write_batches(reader, reader.schema, output_format, output or sys.stdout)  # type: ignore[arg-type]
    if output is not None:
        click.echo(f"wrote {written} rows to {output}", err=True)
