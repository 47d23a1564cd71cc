"""The job page's delivery-over-time chart as an inline SVG (no script, no library): cumulative lines of what
was handed to the provider, delivered and failed, from the job's progress notes."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from models.statuses import MessageStatus as S

#: (label, CSS class, statuses summed) of each line
LINES = (("sent", "sent", (S.SUBMITTED, S.DELIVERED, S.FAILED, S.EXPIRED)),
         ("delivered", S.DELIVERED, (S.DELIVERED,)),
         ("failed or expired", S.FAILED, (S.FAILED, S.EXPIRED)))
WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T, PAD_R = 720, 220, 64, 28, 12, 12


def _ticks(top: int) -> list[int]:
    """Up to five round values from 0 to `top`."""
    if top <= 0:
        return [0]
    step = 10 ** max(0, len(str(top)) - 1)
    while top / step > 5:
        step *= 2
    return list(range(0, top + 1, step))


def svg(points: Sequence[tuple[datetime, dict[str, int]]], total: int) -> str:
    """The chart of `points` (time, counts per status), y from 0 to `total` recipients."""
    t0, t1 = points[0][0], points[-1][0]
    span = max((t1 - t0).total_seconds(), 1.0)
    top = max(total, 1)
    w, h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def xy(at: datetime, n: int) -> str:
        return f"{PAD_L + w * (at - t0).total_seconds() / span:.1f},{PAD_T + h - h * n / top:.1f}"

    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="delivery over time" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for tick in _ticks(top):
        y = PAD_T + h - h * tick / top
        out.append(f'<line class="grid" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="axis" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    out.append(f'<text class="axis" x="{PAD_L}" y="{HEIGHT - 8}">{t0:%H:%M:%S}</text>'
               f'<text class="axis" x="{WIDTH - PAD_R}" y="{HEIGHT - 8}" text-anchor="end">{t1:%H:%M:%S} UTC '
               f'({span:,.0f} s)</text>')
    for i, (label, css, statuses) in enumerate(LINES):
        path = " ".join(xy(at, sum(c.get(s, 0) for s in statuses)) for at, c in points)
        out.append(f'<polyline class="line {css}" points="{path}"/>'
                   f'<text class="legend {css}" x="{PAD_L + 8 + 150 * i}" y="{PAD_T + 12}">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
