// Compares two benchmark runs figure by figure, so that a regression shows in
// one command:
//
//   BENCH_COMPARE=bench/results/latest.json npm run bench   # this run against an earlier one
//   node bench/compare.mjs old.json [new.json]              # two saved runs (new: latest.json)
//
// For each (operation, mode, client) present in both runs it prints the median
// of each figure before and after, the change, and each side's spread
// ((max−min)/median across repetitions). A change is called out only when the
// two runs' min–max ranges do not overlap: on this small, shared machine
// anything else is within noise.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { CLIENT_LABEL, OP_LABEL, modeLabel } from "./lib/labels.mjs";

/** The figures compared: the summary key, its name, and whether higher is better. */
const FIGURES = [
  ["opsPerSec", "ops/s", true],
  ["cpuUsPerOp", "CPU µs/op", false],
  ["p50Ms", "p50 ms", false],
  ["p99Ms", "p99 ms", false],
];

const fmt = (x) => (x >= 1000 ? Math.round(x).toLocaleString("en-US") : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/**
 * The comparison of two runs (results JSON objects): one row per figure, with
 * `verdict` "better", "worse" or "noise".
 */
export function compareRuns(before, after) {
  const rows = [];
  for (const b of before.results) {
    const a = after.results.find((r) => r.client === b.client && r.op === b.op && r.concurrency === b.concurrency);
    if (!a) continue;
    for (const [key, name, higherIsBetter] of FIGURES) {
      const x = b.summary[key];
      const y = a.summary[key];
      const change = (y.median - x.median) / x.median;
      const apart = y.min > x.max || y.max < x.min;
      const improved = higherIsBetter ? change > 0 : change < 0;
      rows.push({
        op: b.op,
        concurrency: b.concurrency,
        client: b.client,
        figure: name,
        before: x.median,
        after: y.median,
        change,
        spreadBefore: x.pct,
        spreadAfter: y.pct,
        verdict: apart ? (improved ? "better" : "worse") : "noise",
      });
    }
  }
  return rows;
}

/** The comparison as a Markdown table, the clear changes first counted. */
export function compareMarkdown(before, after, rows = compareRuns(before, after)) {
  const worse = rows.filter((r) => r.verdict === "worse").length;
  const better = rows.filter((r) => r.verdict === "better").length;
  const lines = [
    `Comparing ${before.date} (commit ${before.machine.commit}) → ${after.date} (commit ${after.machine.commit}): ` +
      `${worse} figure(s) clearly worse, ${better} clearly better, ${rows.length - worse - better} within noise (min–max ranges overlap).`,
    "",
    "| op | mode | client | figure | before (±spread) | after (±spread) | change | verdict |",
    "|---|---|---|---|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const change = `${r.change >= 0 ? "+" : ""}${(r.change * 100).toFixed(1)}%`;
    const verdict = r.verdict === "noise" ? "~" : r.verdict === "worse" ? "**worse**" : "better";
    lines.push(
      `| ${OP_LABEL[r.op] ?? r.op} | ${modeLabel(r.concurrency)} | ${CLIENT_LABEL[r.client] ?? r.client} | ${r.figure} | ` +
        `${fmt(r.before)} ±${r.spreadBefore.toFixed(0)}% | ${fmt(r.after)} ±${r.spreadAfter.toFixed(0)}% | ${change} | ${verdict} |`,
    );
  }
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const benchDir = path.dirname(fileURLToPath(import.meta.url));
  const [oldFile, newFile = path.join(benchDir, "results", "latest.json")] = process.argv.slice(2);
  if (!oldFile) {
    console.error("usage: node bench/compare.mjs <old results.json> [<new results.json>]");
    process.exit(2);
  }
  const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
  console.log(compareMarkdown(read(oldFile), read(newFile)));
}
