// Raw Node fetch: the requests our SDK sends, written by hand (what a
// hand-rolled client costs). Responses are parsed and checked as an SDK would.
import os from "node:os";

export const name = "fetch";

const BASE_PATH = "/api/client/v2.0";

export function load() {
  return globalThis.fetch;
}

export async function setup(fetch, cfg) {
  const tag = `fetch-${process.pid}`;
  const json = { "Content-Type": "application/json;charset=utf-8", Accept: "application/json" };

  async function send(method, url, bearer, body) {
    const headers = bearer ? { ...json, Authorization: `Bearer ${bearer}` } : json;
    const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text}`);
    return text;
  }

  const loc = JSON.parse(await (await fetch(`${cfg.baseUrl}${BASE_PATH}/app/${cfg.appId}/location`)).text());
  if (typeof loc.hostname !== "string") throw new Error("no hostname in the location response");
  const host = loc.hostname.replace(/\/+$/, "");
  const url = (path) => `${host}${BASE_PATH}/${path}`;
  const loginUrl = url(`app/${cfg.appId}/auth/providers/local-userpass/login`);
  const device = {
    appId: cfg.appId, platform: os.type(), platformVersion: os.release(), sdk: "JS", sdkVersion: "0.1.0",
    cpuArch: process.arch, deviceName: "unknown", deviceVersion: "unknown", frameworkName: "Node.js",
    frameworkVersion: process.version,
  };

  async function login() {
    const body = { provider: "local-userpass", username: cfg.email, password: cfg.password, options: { device } };
    const s = JSON.parse(await send("POST", loginUrl, null, body));
    for (const k of ["access_token", "refresh_token", "user_id", "device_id"]) {
      if (typeof s[k] !== "string") throw new Error(`login response without ${k}`);
    }
    const profile = JSON.parse(await send("GET", url("auth/profile"), s.access_token));
    if (!Array.isArray(profile.identities) || typeof profile.data !== "object") throw new Error("malformed profile");
    const identities = profile.identities.map((i) => ({ id: i.id, providerType: i.provider_type }));
    return { id: s.user_id, accessToken: s.access_token, refreshToken: s.refresh_token, identities, profile: profile.data };
  }

  const user = await login();
  const keysUrl = url("auth/api_keys");
  const toKey = (k) => {
    if (typeof k._id !== "string" || k._id.length !== 24 || typeof k.name !== "string" || typeof k.disabled !== "boolean") {
      throw new Error(`malformed API key ${JSON.stringify(k)}`);
    }
    return { _id: k._id, name: k.name, disabled: k.disabled };
  };

  return {
    async fetchAll() {
      const all = JSON.parse(await send("GET", keysUrl, user.refreshToken));
      if (!Array.isArray(all)) throw new Error("not an array");
      const keys = all.map(toKey);
      if (keys.length !== cfg.expectKeys) throw new Error(`expected ${cfg.expectKeys} keys, got ${keys.length}`);
    },
    async fetch() {
      const k = toKey(JSON.parse(await send("GET", `${keysUrl}/${cfg.fetchKeyId}`, user.refreshToken)));
      if (k._id !== cfg.fetchKeyId) throw new Error("fetched the wrong key");
    },
    async createDelete(i) {
      const name = `${tag}-${i}`;
      const created = JSON.parse(await send("POST", keysUrl, user.refreshToken, { name }));
      const k = toKey(created);
      if (typeof created.key !== "string" || k.name !== name || k.disabled !== false) throw new Error("malformed created key");
      await send("DELETE", `${keysUrl}/${k._id}`, user.refreshToken);
    },
    async enableDisable(i) {
      await send("PUT", `${keysUrl}/${cfg.toggleKeyId}/${i % 2 === 0 ? "disable" : "enable"}`, user.refreshToken);
    },
    async login() {
      const u = await login();
      if (u.id !== user.id) throw new Error("logged in as someone else");
    },
  };
}
