// The benchmark's operations written once against the realm API surface
// (App, Credentials, user.apiKeys), shared by realm-auth-native and realm-web:
// the same code drives both SDKs.

/**
 * @param {{ App: any, Credentials: any }} Realm the SDK's exports
 * @param {object} cfg the run's configuration (see run.mjs)
 * @param {string} tag a prefix for the names of created keys
 * @param {object} [appOptions] more App configuration (realm-web ignores what it does not know)
 */
export async function sdkOps(Realm, cfg, tag, appOptions = {}) {
  const app = new Realm.App({ id: cfg.appId, baseUrl: cfg.baseUrl, ...appOptions });
  const credentials = () => Realm.Credentials.emailPassword(cfg.email, cfg.password);
  const user = await app.logIn(credentials());
  const keys = user.apiKeys;

  const checkKey = (k) => {
    if (typeof k._id !== "string" || k._id.length !== 24 || typeof k.name !== "string" || typeof k.disabled !== "boolean") {
      throw new Error(`malformed API key ${JSON.stringify(k)}`);
    }
  };

  return {
    async fetchAll() {
      const all = await keys.fetchAll();
      for (const k of all) checkKey(k);
      if (all.length !== cfg.expectKeys) throw new Error(`expected ${cfg.expectKeys} keys, got ${all.length}`);
    },
    async fetch() {
      const k = await keys.fetch(cfg.fetchKeyId);
      checkKey(k);
      if (k._id !== cfg.fetchKeyId) throw new Error("fetched the wrong key");
    },
    async createDelete(i) {
      const name = `${tag}-${i}`;
      const k = await keys.create(name);
      if (typeof k.key !== "string" || k.name !== name || k.disabled !== false) throw new Error("malformed created key");
      await keys.delete(k._id);
    },
    async enableDisable(i) {
      if (i % 2 === 0) await keys.disable(cfg.toggleKeyId);
      else await keys.enable(cfg.toggleKeyId);
    },
    async login() {
      const u = await app.logIn(credentials());
      if (u.id !== user.id) throw new Error("logged in as someone else");
    },
  };
}
