// A hand-written SVG line chart: no plotting library is installed, and three
// stacked panels of one series each need nothing more than polylines.
export interface Series { title: string; unit: string; values: number[] }

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

export function svgPanels (xs: number[], series: Series[], xLabel: string): string {
  const width = 820
  const panelH = 170
  const left = 70
  const right = 20
  const top = 28
  const plotW = width - left - right
  const plotH = panelH - top - 30
  const xMax = Math.max(1, ...xs)
  const parts: string[] = []
  series.forEach((s, i) => {
    const y0 = i * panelH
    const finite = s.values.filter(Number.isFinite)
    const yMax = Math.max(1, ...finite) * 1.15
    const px = (x: number): number => left + (x / xMax) * plotW
    const py = (v: number): number => y0 + top + plotH - (v / yMax) * plotH
    parts.push(`<text x="${left}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(s.title)} (${esc(s.unit)})</text>`)
    parts.push(`<rect x="${left}" y="${y0 + top}" width="${plotW}" height="${plotH}" fill="none" stroke="#bbb"/>`)
    for (const f of [0, 0.5, 1]) {
      const v = yMax * f
      parts.push(`<text x="${left - 6}" y="${py(v) + 4}" font-size="11" text-anchor="end">${v >= 100 ? Math.round(v) : v.toFixed(1)}</text>`)
      parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`)
    }
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<text x="${px(xMax * f)}" y="${y0 + top + plotH + 15}" font-size="11" text-anchor="middle">${Math.round(xMax * f)}</text>`)
    }
    const pts = xs.map((x, j) => Number.isFinite(s.values[j]) ? `${px(x).toFixed(1)},${py(s.values[j]!).toFixed(1)}` : '').filter((p) => p !== '')
    parts.push(`<polyline fill="none" stroke="#1f6feb" stroke-width="1.6" points="${pts.join(' ')}"/>`)
  })
  const height = series.length * panelH + 20
  parts.push(`<text x="${left + plotW / 2}" y="${height - 4}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
}
