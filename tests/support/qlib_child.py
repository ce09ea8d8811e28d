"""Run real pyqlib on a provider root in a fresh interpreter and hand back what it read.

qlib keeps its provider in process-global state, so every root is read in its own child process. The
child writes calendar, instrument spans and a features frame — or the Alpha158 and Alpha360 feature sets
with their inputs (:func:`read_alphas_with_qlib`), or the instruments of market files
(:func:`read_markets_with_qlib`) — to files; tests compare them against expectations
built independently with pandas/numpy, or against silver.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

_READER = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path

    import qlib
    from qlib.data import D


    def main(root, freq, out, expressions, alpha158):
        out = Path(out)
        expressions = json.loads(expressions)
        provider = json.loads(root) if root.startswith("{") else root
        qlib.init(provider_uri=provider, region="us", kernels=1)
        calendar = [ts.isoformat() for ts in D.calendar(freq=freq)]
        spans = D.list_instruments(D.instruments("all"), as_list=False, freq=freq)
        spans = {k: [[a.isoformat(), b.isoformat()] for a, b in v] for k, v in spans.items()}
        frame = D.features(
            D.instruments("all"), expressions, start_time=calendar[0], end_time=calendar[-1], freq=freq
        )
        frame.columns = [f"c{i}" for i in range(len(expressions))]
        frame.reset_index().to_parquet(out / "features.parquet")
        meta = {"calendar": calendar, "spans": spans}
        if alpha158 == "1":
            from qlib.contrib.data.handler import Alpha158

            handler = Alpha158(
                instruments="all", start_time=calendar[0], end_time=calendar[-1], freq=freq,
                infer_processors=[], learn_processors=[],
            )
            features = handler.fetch(col_set="feature")
            meta["alpha158"] = {"rows": int(len(features)), "columns": int(features.shape[1]),
                                "non_null": int(features.notna().sum().sum())}
        (out / "meta.json").write_text(json.dumps(meta))


    if __name__ == "__main__":
        main(*sys.argv[1:])
    """
)


def _run(source: str, workdir: Path, *args: str) -> None:
    """Run the reader script ``source`` in a fresh interpreter in ``workdir`` (created), bounded in time."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "qlib_reader.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"qlib reader failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def read_with_qlib(
    root: Path | Mapping[str, Path],
    freq: str,
    expressions: list[str],
    workdir: Path,
    *,
    alpha158: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """(calendar/spans[/alpha158 stats], features frame with columns c0..cN) as real qlib reads them.

    ``root`` is one provider root, or a root per frequency (``{"day": …, "1min": …}``) as qlib takes it.
    """
    provider = str(root) if isinstance(root, Path) else json.dumps({k: str(v) for k, v in root.items()})
    _run(_READER, workdir, provider, freq, str(workdir), json.dumps(expressions), "1" if alpha158 else "0")
    meta = json.loads((workdir / "meta.json").read_text())
    features = pd.read_parquet(workdir / "features.parquet")
    features.columns = ["instrument", "datetime", *expressions]
    return meta, features


_MARKETS = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path

    import qlib
    from qlib.data import D


    def main(root, out, markets):
        qlib.init(provider_uri=root, region="us", kernels=1)
        found = {}
        for market in json.loads(markets):
            spans = D.list_instruments(D.instruments(market), as_list=False)
            found[market] = {
                k: [[a.date().isoformat(), b.date().isoformat()] for a, b in v] for k, v in spans.items()
            }
        Path(out, "markets.json").write_text(json.dumps(found))


    if __name__ == "__main__":
        main(*sys.argv[1:])
    """
)


def read_markets_with_qlib(
    root: Path, markets: list[str], workdir: Path
) -> dict[str, dict[str, list[list[str]]]]:
    """Per market, ``D.list_instruments(D.instruments(market), as_list=False)`` as real qlib reads it from
    the day root ``root``: instrument → its spans ``[first, last]`` (ISO dates)."""
    _run(_MARKETS, workdir, str(root), str(workdir), json.dumps(markets))
    found: dict[str, dict[str, list[list[str]]]] = json.loads((workdir / "markets.json").read_text())
    return found


_ALPHAS = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path

    import qlib
    from qlib.contrib.data.handler import Alpha158
    from qlib.contrib.data.loader import Alpha158DL, Alpha360DL
    from qlib.data import D

    INPUTS = ["$open", "$high", "$low", "$close", "$volume", "$vwap", "$factor"]


    def frame(data, names, path):
        data.columns = names
        data.reset_index()[["instrument", "datetime", *names]].to_parquet(path)


    def main(root, out):
        out = Path(out)
        qlib.init(provider_uri=root, region="us", kernels=1)
        calendar = D.calendar(freq="day")
        start, end = calendar[0], calendar[-1]
        handler = Alpha158(
            instruments="all", start_time=start, end_time=end, infer_processors=[], learn_processors=[]
        )
        alpha158 = handler.fetch(col_set="feature")
        frame(alpha158, list(alpha158.columns), out / "alpha158.parquet")
        fields, names = Alpha360DL.get_feature_config()
        frame(D.features(D.instruments("all"), fields, start_time=start, end_time=end), names,
              out / "alpha360.parquet")
        frame(D.features(D.instruments("all"), INPUTS, start_time=start, end_time=end),
              [f[1:] for f in INPUTS], out / "inputs.parquet")
        expressions = {}
        for loader in (Alpha158DL, Alpha360DL):
            fields, names = loader.get_feature_config()
            expressions[loader.__name__] = dict(zip(names, fields))
        (out / "expressions.json").write_text(json.dumps(expressions))


    if __name__ == "__main__":
        main(*sys.argv[1:])
    """
)


@dataclass(frozen=True)
class QlibAlphas:
    """What real qlib computes from a daily root: the Alpha158 handler's features, Alpha360's (its
    loader's expressions through ``D.features``), the root's inputs (``open high low close volume vwap
    factor``) and each feature's expression, by set. Frames are indexed by (instrument, datetime) and hold
    a row for every calendar session inside each instrument's span (NaN where it has no bar)."""

    alpha158: pd.DataFrame
    alpha360: pd.DataFrame
    inputs: pd.DataFrame
    expressions: dict[str, dict[str, str]]


def read_alphas_with_qlib(root: Path, workdir: Path) -> QlibAlphas:
    """Alpha158 and Alpha360 as real qlib computes them from the daily provider ``root``."""
    _run(_ALPHAS, workdir, str(root), str(workdir))

    def read(name: str) -> pd.DataFrame:
        return pd.read_parquet(workdir / f"{name}.parquet").set_index(["instrument", "datetime"]).sort_index()

    loaders = json.loads((workdir / "expressions.json").read_text())
    return QlibAlphas(
        read("alpha158"),
        read("alpha360"),
        read("inputs"),
        {"alpha158": loaders["Alpha158DL"], "alpha360": loaders["Alpha360DL"]},
    )
