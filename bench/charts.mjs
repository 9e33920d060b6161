// SVG charts of a benchmark run, drawn with Vega-Lite (compiled to a Vega
// view and rendered to SVG headless, no browser): throughput, CPU per call,
// latency at concurrency 64, and peak RSS, by client and operation, with each
// figure's spread across repetitions as a whisker.
//
//   node bench/charts.mjs [results.json] [out-dir]   # default: bench/results/latest.json, beside it
//
// `npm run bench` calls writeCharts() after each full run.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as vega from "vega";
import { compile } from "vega-lite";

import { CLIENT_LABEL, OP_LABEL, modeLabel } from "./lib/labels.mjs";

/** The charts written, as file names under the output folder. */
export const CHART_FILES = ["throughput.svg", "cpu.svg", "latency.svg", "rss.svg"];

/** One row per (client, op, mode) and measure: its median and spread. */
function rows(res) {
  const out = [];
  for (const r of res.results) {
    const s = r.summary;
    const base = {
      client: CLIENT_LABEL[r.client] ?? r.client,
      op: OP_LABEL[r.op] ?? r.op,
      mode: modeLabel(r.concurrency),
      concurrency: r.concurrency,
    };
    for (const [measure, key] of [["ops/s", "opsPerSec"], ["CPU µs per call", "cpuUsPerOp"], ["p50 ms", "p50Ms"], ["p99 ms", "p99Ms"]]) {
      out.push({ ...base, measure, value: s[key].median, min: s[key].min, max: s[key].max });
    }
    out.push({ ...base, measure: "peak RSS MB", value: s.maxRssMb, min: s.maxRssMb, max: s.maxRssMb });
  }
  return out;
}

/**
 * Horizontal bars (one per client, grouped by operation) with min–max whiskers,
 * in a column per `column` value.
 */
function barSpec({ title, data, measure, column, logScale = false, subtitle }) {
  const clients = [...new Set(data.map((d) => d.client))];
  const x = { field: "value", type: "quantitative", title: measure, scale: logScale ? { type: "log" } : { zero: true } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle, anchor: "start" },
    data: { values: data },
    transform: [{ filter: { field: "measure", oneOf: Array.isArray(measure) ? measure : [measure] } }],
    facet: {
      row: { field: "op", type: "nominal", title: null, sort: Object.values(OP_LABEL), header: { labelAngle: 0, labelAlign: "left", labelFontWeight: "bold" } },
      column: { field: column, type: "nominal", title: null, sort: [...new Set(data.map((d) => d[column]))], header: { labelFontWeight: "bold" } },
    },
    spec: {
      width: 260,
      height: { step: 9 },
      layer: [
        {
          mark: { type: "bar" },
          encoding: {
            y: { field: "client", type: "nominal", sort: clients, axis: null },
            // No stacking: a stacked bar starts at 0, which a log scale cannot show.
            x: { ...x, stack: null, title: Array.isArray(measure) ? "ms (log scale)" : x.title },
            color: { field: "client", type: "nominal", sort: clients, legend: { title: null, orient: "bottom", columns: 2, labelLimit: 400 } },
          },
        },
        {
          mark: { type: "rule", color: "#333" },
          encoding: {
            y: { field: "client", type: "nominal", sort: clients },
            x: { field: "min", type: "quantitative", scale: x.scale },
            x2: { field: "max" },
          },
        },
      ],
    },
    resolve: { scale: { x: "independent" } },
    config: { font: "sans-serif", view: { stroke: null }, facet: { spacing: 6 } },
  };
}

/** The four chart specs of a run. */
export function chartSpecs(res) {
  const data = rows(res);
  const run = `${res.date.slice(0, 10)}, commit ${res.machine.commit}`;
  const when = `${run}; whiskers: min–max of the repetitions`;
  const c64 = data.filter((d) => d.concurrency !== 1);
  return {
    "throughput.svg": barSpec({ title: "Throughput (calls per second, higher is better)", subtitle: when, data, measure: "ops/s", column: "mode" }),
    "cpu.svg": barSpec({ title: "CPU per call, client process (µs, lower is better)", subtitle: when, data, measure: "CPU µs per call", column: "mode" }),
    "latency.svg": barSpec({
      title: "Latency at concurrency 64 (ms, log scale, lower is better)",
      subtitle: when,
      data: c64,
      measure: ["p50 ms", "p99 ms"],
      column: "measure",
      logScale: true,
    }),
    "rss.svg": barSpec({ title: "Peak RSS of the client process (MB, lower is better)", subtitle: `${run}; the largest of the processes`, data, measure: "peak RSS MB", column: "mode" }),
  };
}

/** Renders a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec) {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Writes the charts of `res` (a results JSON object) into `dir`; returns their paths. */
export async function writeCharts(res, dir) {
  const written = [];
  for (const [file, spec] of Object.entries(chartSpecs(res))) {
    const out = path.join(dir, file);
    fs.writeFileSync(out, `${await renderSvg(spec)}\n`);
    written.push(out);
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const benchDir = path.dirname(fileURLToPath(import.meta.url));
  const input = process.argv[2] ?? path.join(benchDir, "results", "latest.json");
  const dir = process.argv[3] ?? path.dirname(input);
  const res = JSON.parse(fs.readFileSync(input, "utf8"));
  for (const file of await writeCharts(res, dir)) console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
