"""What the cohort report and the patient card share: figures as embedded PNGs, readable names, the page.

Reports are single HTML files: every figure is a PNG in a ``data:`` URI and
the style sheet is inline, so a report opens offline, from an e-mail or a
USB stick, and loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# colours that stay distinguishable for the common colour-vision deficiencies (Okabe-Ito)
BLUE, ORANGE, GREEN, RED, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#999999"
PALETTE = (BLUE, ORANGE, GREEN, RED, "#CC79A7", "#56B4E9", "#F0E442", GREY)

UNITS = {"g_dl": "g/dL", "mg_dl": "mg/dL", "u_l": "U/L", "ng_ml": "ng/mL", "mm3": "mm³", "mm": "mm", "hu": "HU",
         "months": "months", "years": "years", "kg": "kg", "cm": "cm"}


def figure(width: float = 5.0, height: float = 3.4):
    """A new matplotlib figure and axes (headless backend, report style)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def embed(fig, alt: str) -> str:
    """An ``<img>`` holding the figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def readable(feature: str, labels: dict[str, dict[str, str]] | None = None) -> str:
    """A feature name a clinician can read: the modality in brackets, units spelled out.

    The modality that made a feature names it best: ``labels`` (the run's
    ``feature_labels.json``: spec modality name -> feature -> label) comes from
    each modality's ``feature_labels``. Without a label, ``clinical:hemoglobin_g_dl``
    becomes ``Hemoglobin (g/dL) (clinical)``.
    """
    modality, _, rest = feature.partition(":")
    if not rest:
        modality, rest = "", feature
    missing = rest.endswith("__missing")
    rest = rest.removesuffix("__missing")
    label = (labels or {}).get(modality, {}).get(rest)
    if label is not None:
        text = label
    elif rest.split(":")[-1] == "present":
        text = f"has {modality} data"
    else:
        text = _tabular(rest)
    if missing:
        text += " is missing"
    return f"{text} ({modality})" if modality else text


def _tabular(name: str) -> str:
    if re.fullmatch(r"[A-Z0-9][A-Z0-9\-\.]*", name):  # a gene symbol or an upper-case code: keep it
        return name
    for suffix, unit in UNITS.items():
        if name.lower().endswith("_" + suffix):
            base = name[: -len(suffix) - 1].replace("_", " ")
            return f"{base[:1].upper()}{base[1:]} ({unit})"
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; cells are escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{float(value):.{digits}f}"


def interval(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """``value (low – high)`` of a metric entry of metrics.json."""
    if not entry:
        return "n/a"
    if entry.get("ci_low") is None:
        return fmt(entry.get("value"), digits)
    return f"{fmt(entry['value'], digits)} ({fmt(entry['ci_low'], digits)} – {fmt(entry['ci_high'], digits)})"


STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d1d1f; margin: 0; background: #f5f6f8; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px; }
header { border-bottom: 3px solid #0072B2; margin-bottom: 16px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; color: #0b3d62; }
.sub { color: #555; margin: 0 0 12px; }
section { background: #fff; border-radius: 8px; padding: 12px 18px 16px; margin: 14px 0; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.grid { display: flex; flex-wrap: wrap; gap: 12px; } .grid > div { flex: 1 1 300px; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 6px 0; font-size: 14px; }
th, td { border-bottom: 1px solid #e3e5e8; padding: 4px 10px; text-align: left; } th { background: #f0f3f7; }
.big { font-size: 30px; font-weight: 600; color: #0b3d62; }
.note { color: #555; font-size: 13px; } .warn { color: #8a4b00; }
ul { margin: 4px 0; padding-left: 20px; }
"""


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A self-contained HTML page: a header and one <section> per (heading, body HTML)."""
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{b}</section>" for h, b in sections if b)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main><header><h1>{html.escape(title)}</h1><p class=\"sub\">{html.escape(subtitle)}</p></header>"
            f"{body}</main></body></html>\n")
