// Small statistics helpers shared by the runner and the client processes.

/** The p-th percentile (nearest rank on a sorted copy), p in [0, 100]. */
export function percentile(values, p) {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const idx = Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)));
  return sorted[idx];
}

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Spread of repetitions: min, max, and (max-min)/median in percent. */
export function spread(values) {
  const med = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { min, max, pct: med ? ((max - min) / med) * 100 : 0 };
}
