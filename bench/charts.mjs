// SVG charts of a benchmark run, drawn with Vega-Lite (compiled to a Vega
// view and rendered to SVG headless, no browser), each figure's spread across
// repetitions as a whisker. The client benchmark (`npm run bench`): throughput,
// CPU per call, latency at concurrency 64 and peak RSS, by client and
// operation. The server benchmark (`npm run bench:server`): requests per second
// and CPU per request of each backend against its floors.
//
//   node bench/charts.mjs [results.json] [out-dir]   # default: bench/results/latest.json, beside it
//
// `npm run bench` calls writeCharts() after each full run, `npm run
// bench:server` writeServerCharts(); given a server run's JSON (server*.json),
// this script draws that run's charts.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as vega from "vega";
import { compile } from "vega-lite";

import { CLIENT_LABEL, OP_LABEL, SERVER_OP_LABEL, modeLabel } from "./lib/labels.mjs";

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

// ---- the server benchmark -------------------------------------------------------------------

/** The server's minimum rate per backend: a number for memory, a fraction of the select floor otherwise. */
const SERVER_TARGET = { memory: 100_000, ratio: 0.5 };

/** The floors' series names. */
const SELECT_FLOOR = "floor: one select (SQLite loop, pgbench -S)";
const SHAPED_FLOOR = "floor: one request's statements, nothing else";
const HTTP_FLOOR = "floor: HTTP only (a fixed answer, nothing else)";

/** min and max of a list of repetitions' figures. */
const span = (values) => ({ min: Math.min(...values), max: Math.max(...values) });

/**
 * One row per (backend, op, series) and measure: the server's figure and its floors'
 * (select-only, and the statements one request makes), with their repetitions' spread.
 */
function serverRows(run) {
  const out = [];
  for (const r of run.table) {
    const base = { backend: r.backend, op: SERVER_OP_LABEL[r.op] ?? r.op };
    const reps = run.results[r.backend].ops[r.op].reps;
    const cpu = (rep) => rep.serverCpuUsPerReq + (rep.dbCpuUsPerReq ?? 0);
    out.push({ ...base, series: "server", measure: "req/s", value: r.reqPerSec, ...span(reps.map((x) => x.reqPerSec)) });
    out.push({ ...base, series: "server", measure: "CPU µs", value: r.cpuPerReq, ...span(reps.map(cpu)) });
    const floors = run.results[r.backend].floors;
    if (!floors) continue;
    for (const [key, series] of [["select", SELECT_FLOOR], [r.op, SHAPED_FLOOR], ["http", HTTP_FLOOR]]) {
      // The HTTP floor answers list requests only.
      const f = key === "http" && r.op !== "list" ? null : floors[key];
      if (!f) continue;
      out.push({ ...base, series, measure: "req/s", value: f.opsPerSec, ...span(f.reps) });
      if (f.cpuUsPerOp != null) out.push({ ...base, series, measure: "CPU µs", value: f.cpuUsPerOp, min: f.cpuUsPerOp, max: f.cpuUsPerOp });
    }
  }
  return out;
}

/** Bars per series in a grid of backends (rows) and operations (columns), on a log scale. */
function serverSpec({ title, subtitle, data, measure, targets = [] }) {
  const series = ["server", HTTP_FLOOR, SELECT_FLOOR, SHAPED_FLOOR];
  const x = { field: "value", type: "quantitative", title: `${measure} (log scale)`, scale: { type: "log" } };
  const figures = { filter: "datum.series !== 'target'" };
  const y = { field: "series", type: "nominal", sort: series, axis: null };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle, anchor: "start" },
    data: { values: [...data.filter((d) => d.measure === measure), ...targets.map((t) => ({ ...t, series: "target" }))] },
    facet: {
      row: { field: "backend", type: "nominal", title: null, sort: ["memory", "sqlite", "postgres"], header: { labelAngle: 0, labelAlign: "left", labelFontWeight: "bold" } },
      column: { field: "op", type: "nominal", title: null, sort: Object.values(SERVER_OP_LABEL), header: { labelFontWeight: "bold" } },
    },
    spec: {
      width: 300,
      height: { step: 12 },
      layer: [
        {
          transform: [figures],
          mark: { type: "bar" },
          encoding: {
            y,
            x: { ...x, stack: null },
            color: { field: "series", type: "nominal", sort: series, legend: { title: null, orient: "bottom", columns: 1, labelLimit: 400 } },
          },
        },
        { transform: [figures], mark: { type: "rule", color: "#333" }, encoding: { y, x: { field: "min", type: "quantitative", scale: x.scale }, x2: { field: "max" } } },
        {
          // The target: a dashed line across the cell, where the server's bar must reach.
          transform: [{ filter: "datum.series === 'target'" }],
          mark: { type: "rule", color: "#d62728", strokeDash: [4, 3], strokeWidth: 1.5 },
          encoding: { x: { field: "value", type: "quantitative", scale: x.scale } },
        },
      ],
    },
    config: { font: "sans-serif", view: { stroke: null }, facet: { spacing: 8 } },
  };
}

/** The two chart specs of a server run (`npm run bench:server`), by file name. */
export function serverChartSpecs(run, name = "server") {
  const data = serverRows(run);
  const when = `${run.meta.date.slice(0, 10)}, commit ${run.meta.commit}; server on one core; whiskers: min–max of the repetitions`;
  // The targets are on the read rate (the list); a login is reported without one.
  const targets = run.table
    .filter((r) => r.op === "list")
    .map((r) => ({
      backend: r.backend,
      op: SERVER_OP_LABEL[r.op] ?? r.op,
      value: r.backend === "memory" ? SERVER_TARGET.memory : r.floor * SERVER_TARGET.ratio,
    }));
  return {
    [`${name}-throughput.svg`]: serverSpec({
      title: "realm-auth-server: requests per second against the backend's floor (higher is better)",
      subtitle: [when, "dashed: the target on the list (memory 100k req/s; SQL stores 0.5× the select floor); logins have none"],
      data,
      measure: "req/s",
      targets,
    }),
    [`${name}-cpu.svg`]: serverSpec({
      title: "realm-auth-server: CPU per request on the server's core, with the database's (lower is better)",
      subtitle: when,
      data,
      measure: "CPU µs",
    }),
  };
}

/** Writes the charts of a server run into `dir` as `<name>-*.svg`; returns their paths. */
export async function writeServerCharts(run, dir, name = "server") {
  const written = [];
  for (const [file, spec] of Object.entries(serverChartSpecs(run, name))) {
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
  // A server run has a table of (backend, op) rows; a client run has results per (client, op, mode).
  const files = res.table
    ? await writeServerCharts(res, dir, path.basename(input, ".json"))
    : await writeCharts(res, dir);
  for (const file of files) console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
