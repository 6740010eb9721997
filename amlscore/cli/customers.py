"""``amlscore customers upsert FILE``: add or change customers, in the data folder or in a running service.

FILE holds rows of the contract's customers table (.csv or .parquet; ``customer_id`` is the key). They
are checked against the contract first (every problem named, nothing written when one breaks it).

* With ``--service URL``: they go to the running service's ``POST /v1/admin/customers`` (an admin key
  from ``--key`` or ``$AML_ADMIN_KEY``). The service applies them from its next transaction on (every
  worker, through the shared state), rates the changed customers again (keeping their previous rating
  in their history) and writes its data folder's customers file.
* Without: the data folder's customers file is rewritten with them (a known customer_id's row replaced
  where it stands, new customers appended), for the next start, training or rating. A service started
  on that folder later takes the changed rows as they are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

customers_app = typer.Typer(help="Customers of the data folder or of a running service: add or change them.",
                            no_args_is_help=True)


def _read_rows(path: Path):  # -> pd.DataFrame of contract values
    import pandas as pd

    from amlscore.contract.errors import AmlError

    if not path.is_file():
        raise AmlError(f"There is no customers file at {path}.")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise AmlError(f"The customers file {path} must be .csv or .parquet.")


@customers_app.command("upsert")
def upsert(
    file: Annotated[Path, typer.Argument(help="Customers rows to add or change (.csv or .parquet, contract columns).")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder whose customers file is changed (default: $AML_DATA_DIR or ./data/default).")] = None,
    service: Annotated[Optional[str], typer.Option("--service", help="A running service to send them to instead, e.g. http://127.0.0.1:3000.")] = None,
    key: Annotated[Optional[str], typer.Option("--key", help="Admin API key for --service (default: $AML_ADMIN_KEY).")] = None,
) -> None:
    """Add or change customers: in a running service (--service) or in the data folder's customers file."""
    from amlscore.contract import load_dataset, write_customers
    from amlscore.contract.errors import AmlError
    from amlscore.features.registry import customer_records, typed_customers, upsert_customer_table
    from amlscore.settings import default_data_dir

    console = Console(highlight=False, soft_wrap=True)
    rows = typed_customers(_read_rows(file))  # the contract's checks, every problem named
    records = customer_records(rows)
    if service:
        import httpx

        token = key or os.environ.get("AML_ADMIN_KEY")
        if not token:
            raise AmlError("--service needs an admin API key: --key KEY or AML_ADMIN_KEY.")
        try:
            resp = httpx.post(service.rstrip("/") + "/v1/admin/customers", json={"customers": records},
                              headers={"Authorization": f"Bearer {token}"}, timeout=300)
        except httpx.HTTPError as exc:
            raise AmlError(f"cannot reach the service at {service}: {exc}") from None
        if resp.status_code != 200:
            raise AmlError(f"the service refused the customers ({resp.status_code}): {resp.text[:2000]}")
        out = resp.json()
        console.print(f"service {service}: {len(out['added'])} added, {len(out['updated'])} updated, "
                      f"{out['unchanged']} unchanged")
        for cid, r in out["ratings"].items():
            before = (r.get("before") or {}).get("level", "-")
            after = (r.get("after") or {}).get("level", "-")
            console.print(f"  {cid}: rating {before} -> {after}")
        return
    folder = data if data is not None else default_data_dir()
    current = load_dataset(folder, require_reports=False).customers
    known = set(current["customer_id"].astype(str))
    merged = upsert_customer_table(current, records)
    path = write_customers(folder, merged)
    ids = [r["customer_id"] for r in records]
    console.print(f"{path}: {sum(c not in known for c in ids)} added, {sum(c in known for c in ids)} replaced "
                  f"({len(merged):,} customers)")
