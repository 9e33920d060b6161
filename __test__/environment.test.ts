// The environment a Node program runs in: REALM_AUTH_EMULATOR_HOST, proxies,
// SSL_CERT_FILE (with a real TLS server), and the logger hook.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { App, Credentials, ErrorCode, setLogLevel, setLogger } from "realm-auth-native";

import { useEmulator } from "./helpers";

// Plain HTTP even in the suite's TLS run: these tests put their own proxies and TLS fronts
// before it, and read its URLs in log lines.
const env = useEmulator({ tls: false });
const INDEX = join(__dirname, "..", "index.js");
const SERVER_INDEX = join(__dirname, "..", "packages", "server", "index.js");

/** The environment without any proxy or emulator variable. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/_proxy$/i.test(k) && k !== "REALM_AUTH_EMULATOR_HOST") out[k] = v;
  }
  return { ...out, ...extra };
}

/** Runs `script` in a child process with a clean environment and a working directory of its own
 * (so the users it keeps there, realm v12's default, start empty); checks it exits 0. */
async function run(script: string, extraEnv: Record<string, string>): Promise<{ out: string; err: string }> {
  const cwd = mkdtempSync(join(tmpdir(), "realm-auth-child-"));
  try {
    const proc = spawn(process.execPath, ["-e", script], { env: cleanEnv(extraEnv), cwd });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (err += d));
    const [code] = (await once(proc, "exit")) as [number];
    assert.equal(code, 0, err);
    return { out, err };
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** Runs `body` (JS with `App`, `Credentials` in scope) in a child process; resolves with its JSON output. */
async function child(body: string, extraEnv: Record<string, string>): Promise<any> {
  const script = `const { App, Credentials } = require(${JSON.stringify(INDEX)});
(async () => { ${body} })().then((r) => console.log(JSON.stringify(r)), (e) => console.log(JSON.stringify({ error: e.message, code: e.code })));`;
  return JSON.parse((await run(script, extraEnv)).out.trim());
}

/** A forward proxy: plain requests by absolute URL, and CONNECT tunnels. Records what it carried. */
async function startProxy(): Promise<{ url: string; seen: string[]; close(): void }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const upstream = http.request(req.url!, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connect", (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = String(req.url).split(":");
    const upstream = net.connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe("REALM_AUTH_EMULATOR_HOST", () => {
  it("points Apps without a baseUrl at the emulator; an explicit baseUrl wins", async () => {
    const host = env.emulator.baseUrl.replace("http://", "");
    const result = await child(
      `const app = new App(${JSON.stringify(env.emulator.appId)});
       const user = await app.logIn(Credentials.anonymous());
       const explicit = new App({ id: "x", baseUrl: "https://example.invalid" });
       return { baseUrl: app.baseUrl, loggedIn: user.isLoggedIn, explicit: explicit.baseUrl };`,
      { REALM_AUTH_EMULATOR_HOST: host },
    );
    assert.deepEqual(result, { baseUrl: env.emulator.baseUrl, loggedIn: true, explicit: "https://example.invalid" });
  });
});

describe("proxies", () => {
  it("sends requests through HTTP_PROXY, and around it for NO_PROXY hosts", async () => {
    const proxy = await startProxy();
    try {
      const body = `const app = new App({ id: ${JSON.stringify(env.emulator.appId)}, baseUrl: ${JSON.stringify(env.emulator.baseUrl)} });
        const user = await app.logIn(Credentials.anonymous()); return { id: user.id };`;
      const through = await child(body, { HTTP_PROXY: proxy.url });
      assert.ok(through.id, JSON.stringify(through));
      assert.ok(proxy.seen.some((s) => s === `GET ${env.emulator.baseUrl}/api/client/v2.0/app/${env.emulator.appId}/location`), proxy.seen.join("\n"));
      assert.ok(proxy.seen.some((s) => s.startsWith(`POST ${env.emulator.baseUrl}/api/client/v2.0/app/`)));
      proxy.seen.length = 0;
      const around = await child(body, { HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" });
      assert.ok(around.id);
      assert.deepEqual(proxy.seen, []);
    } finally {
      proxy.close();
    }
  });
});

describe("TLS", () => {
  let dir: string;
  let server: https.Server;
  let httpsUrl: string;
  before(async () => {
    // A test CA (trusted only through SSL_CERT_FILE) and a server certificate it signed.
    dir = mkdtempSync(join(tmpdir(), "realm-auth-tls-"));
    const at = (name: string) => join(dir, name);
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
    openssl("req", "-x509", ...ec, "-days", "1", "-subj", "/CN=realm-auth-native test CA", "-keyout", at("ca.key"), "-out", at("ca.pem"));
    openssl("req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", at("key.pem"), "-out", at("server.csr"));
    writeFileSync(at("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    openssl("x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", at("server.ext"), "-out", at("cert.pem"));
    // A TLS front for the emulator; the location it reports points back at this front.
    server = https.createServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (req, res) => {
      const upstream = http.request(`${env.emulator.baseUrl}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
        if (req.url?.endsWith("/location")) {
          let text = "";
          up.on("data", (d) => (text += d));
          up.on("end", () => {
            const body = JSON.stringify({ ...JSON.parse(text), hostname: httpsUrl });
            res.writeHead(200, { "content-type": "application/json" }).end(body);
          });
          return;
        }
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    httpsUrl = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const body = () => `const app = new App({ id: ${JSON.stringify(env.emulator.appId)}, baseUrl: ${JSON.stringify(httpsUrl)}, retries: 0 });
    const user = await app.logIn(Credentials.anonymous()); return { id: user.id };`;

  it("trusts a certificate named by SSL_CERT_FILE", async () => {
    const result = await child(body(), { SSL_CERT_FILE: join(dir, "ca.pem") });
    assert.ok(result.id, JSON.stringify(result));
  });

  it("trusts a certificate named by NODE_EXTRA_CA_CERTS, besides the system's", async () => {
    const result = await child(body(), { NODE_EXTRA_CA_CERTS: join(dir, "ca.pem") });
    assert.ok(result.id, JSON.stringify(result));
  });

  it("refuses a certificate nobody trusts, with no switch to turn that off", async () => {
    const result = await child(body(), { SSL_CERT_FILE: "/etc/ssl/certs/ca-certificates.crt" });
    assert.equal(result.code, ErrorCode.NetworkError);
    assert.match(result.error, /certificate/i);
  });

  it("tunnels HTTPS through HTTPS_PROXY", async () => {
    const proxy = await startProxy();
    try {
      const result = await child(body(), { SSL_CERT_FILE: join(dir, "ca.pem"), HTTPS_PROXY: proxy.url });
      assert.ok(result.id, JSON.stringify(result));
      assert.ok(proxy.seen.includes(`CONNECT ${httpsUrl.replace("https://", "")}`), proxy.seen.join("\n"));
    } finally {
      proxy.close();
    }
  });
});

describe("logger", () => {
  it("hands log lines to setLogger at the chosen level, never a secret", async () => {
    const lines: [string, string][] = [];
    // The older two-parameter form; as with realm v12's declarations, its parameters need types.
    setLogger((level: string, message: string) => lines.push([level, message]));
    try {
      setLogLevel("debug");
      const app = env.newApp();
      const { user, password } = await env.newUser(app);
      await user.apiKeys.create("logged");
      env.emulator.injectFault({ path: "auth/api_keys", action: { type: "respond", status: 503, body: "" } });
      await user.apiKeys.fetchAll();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const text = lines.map(([l, m]) => `${l} ${m}`).join("\n");
      assert.match(text, /^debug GET http:\/\/127\.0\.0\.1:\d+\/api\/client\/v2\.0\/app\/[^/]+\/location -> 200 in \d+\.\d\d ms$/m);
      assert.match(text, /^debug POST .*\/auth\/api_keys -> 201/m);
      assert.match(text, /^warn retrying GET .*\/auth\/api_keys in \d+ ms after status 503 \(retry 1 of 3\)$/m);
      for (const secret of [password, String(user.accessToken), String(user.refreshToken)]) assert.ok(!text.includes(secret));

      lines.length = 0;
      setLogLevel("warn");
      await user.apiKeys.fetchAll();
      setLogLevel("off");
      env.emulator.injectFault({ path: "auth/api_keys", action: { type: "respond", status: 503, body: "" } });
      await user.apiKeys.fetchAll();
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(lines, []);
      assert.throws(() => setLogLevel("loud" as never), TypeError);
      assert.throws(() => setLogger(5 as never), TypeError);
    } finally {
      setLogger(null);
      setLogLevel("warn");
    }
  });

  it("takes realm v12's object form with categories, and levels per category", async () => {
    const entries: { category: string; level: string; message: string }[] = [];
    setLogger((entry) => entries.push(entry));
    try {
      setLogLevel("debug", "Realm.App");
      setLogLevel("error", "Realm.SDK");
      const app = env.newApp();
      await env.newUser(app);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(entries.length > 0);
      for (const e of entries) assert.deepEqual(Object.keys(e).sort(), ["category", "level", "message"]);
      assert.ok(entries.some((e) => e.category === "Realm.App" && e.level === "debug" && / -> 200 in /.test(e.message)));

      entries.length = 0;
      setLogLevel("off", "Realm.App");
      await env.newUser(app);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(entries, []);
      assert.throws(() => setLogLevel("warn", "Realm.Nope" as never), /Unexpected log category: 'Realm.Nope'/);
    } finally {
      setLogger(null);
      setLogLevel("warn");
    }
  });

  it("logs warnings to the console by default, as realm v12 does", async () => {
    const script = `const { App, Credentials, MetadataMode } = require(${JSON.stringify(INDEX)});
const { Emulator } = require(${JSON.stringify(SERVER_INDEX)});
(async () => {
  const emulator = await Emulator.start();
  emulator.injectFault({ path: "app/*/location", times: 1, action: { type: "respond", status: 503, body: "" } });
  const app = new App({ id: emulator.appId, baseUrl: emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
  await app.logIn(Credentials.anonymous());
  await new Promise((resolve) => setTimeout(resolve, 50));
  await emulator.stop();
})();`;
    const { out, err } = await run(script, {});
    assert.match(err, /^\[Realm\.App - warn\] retrying GET .*\/location in \d+ ms after status 503 \(retry 1 of 3\)$/m);
    // Debug lines are below the default level.
    assert.doesNotMatch(out + err, / -> 200 in /);
  });
});
