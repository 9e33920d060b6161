// Code written for realm@12.15.0's declarations, as an app would write it.
// scripts/type-test.mjs compiles this one file against realm's published
// .d.ts files and against ours (the module named "realm" is one or the other),
// as ESM and as CommonJS (a .cts copy), with and without
// `exactOptionalPropertyTypes`: it must compile everywhere. Code that compiles
// against realm but not yet against ours is in v12-code.pending.mts.
//
// Not compiled by `tsc -p tsconfig.json` (an .mts file is outside its
// `__test__/**/*.ts`): "realm" only resolves in the type test's programs.
// Keep it self-contained (no relative imports): it is copied and renamed.
import Realm, { App, Credentials, MetadataMode, ProviderType, UserState } from "realm";
import type { ApiKey, SecretApiKey, User } from "realm";
import "realm/experimental/base-url";

declare const baseUrl: string;
declare const maybeBaseUrl: string | undefined;
declare const maybeTimeout: number | undefined;
declare const key64: ArrayBuffer;

/** `new App(...)` in each form realm v12 documents, and `App.get`. */
export function constructApps(): Realm.App[] {
  const byId = new Realm.App("my-app");
  const byConfig = new Realm.App({ id: "my-app", baseUrl, timeout: 10_000 });
  const named = new App({ id: "my-app", baseFilePath: "/var/lib/my-app" });
  const inMemory = new Realm.App({ id: "my-app", metadata: { mode: Realm.MetadataMode.InMemory } });
  const plain = new Realm.App({ id: "my-app", metadata: { mode: MetadataMode.NoEncryption } });
  const encrypted = new Realm.App({ id: "my-app", metadata: { mode: MetadataMode.Encryption, encryptionKey: key64 } });
  // Deprecated in v12, still declared.
  const noMetadata = new Realm.App({ id: "my-app", metadata: { mode: Realm.MetadataMode.NoMetadata } });
  const metadata: Realm.Metadata = { mode: Realm.MetadataMode.InMemory };
  const config: Realm.AppConfiguration = { id: "my-app", baseUrl, timeout: 5_000, baseFilePath: ".", metadata };
  const fromConfig = new Realm.App(config);
  const cached: Realm.App = Realm.App.get("my-app");
  const deprecated: App = App.getApp("my-app");
  return [byId, byConfig, named, inMemory, plain, encrypted, noMetadata, fromConfig, cached, deprecated];
}

/**
 * Optional settings as code checked with `exactOptionalPropertyTypes` writes
 * them: an absent property is left out (never set to `undefined`, which
 * realm's `baseUrl?: string` does not allow there), while an optional
 * parameter takes `undefined` explicitly.
 */
export function exactOptional(): Realm.App {
  const config: Realm.AppConfiguration = {
    id: "my-app",
    ...(maybeBaseUrl !== undefined ? { baseUrl: maybeBaseUrl } : {}),
    ...(maybeTimeout !== undefined ? { timeout: maybeTimeout } : {}),
  };
  Realm.Credentials.anonymous(undefined);
  const metadata: Realm.Metadata = { mode: Realm.MetadataMode.NoEncryption };
  return new Realm.App({ ...config, metadata });
}

/** Logging in with each credential type of the auth part, and the App's users. */
export async function logIn(app: Realm.App): Promise<(Realm.User | null)[]> {
  const ada: Realm.User = await app.logIn(Realm.Credentials.emailPassword("ada@example.com", "pw-123456"));
  const bob: User = await app.logIn(Credentials.emailPassword({ email: "bob@example.com", password: "pw-123456" }));
  const anon = await app.logIn(Realm.Credentials.anonymous());
  await app.logIn(Realm.Credentials.anonymous(false));
  await app.logIn(Realm.Credentials.apiKey("key-value"));
  await app.logIn(Realm.Credentials.jwt("header.payload.signature"));
  await app.logIn(Realm.Credentials.function({ username: "ada" }));
  const credentials: Realm.Credentials = Realm.Credentials.apiKey("key-value");
  await app.logIn(credentials);
  const current: Realm.User | null = app.currentUser;
  const everyone: Readonly<Record<string, Realm.User>> = app.allUsers;
  for (const user of Object.values(app.allUsers)) void user.id;
  app.switchUser(ada);
  await app.removeUser(bob);
  await app.deleteUser(anon);
  return [current, ...Object.values(everyone)];
}

/** The email/password provider's account functions. */
export async function emailPassword(app: Realm.App): Promise<void> {
  const auth: Realm.Auth.EmailPasswordAuth = app.emailPasswordAuth;
  await auth.registerUser({ email: "ada@example.com", password: "pw-123456" });
  await auth.confirmUser({ token: "token", tokenId: "token-id" });
  await auth.resendConfirmationEmail({ email: "ada@example.com" });
  await auth.retryCustomConfirmation({ email: "ada@example.com" });
  await auth.sendResetPasswordEmail({ email: "ada@example.com" });
  await auth.resetPassword({ password: "pw-654321", token: "token", tokenId: "token-id" });
  await auth.callResetPasswordFunction({ email: "ada@example.com", password: "pw-654321" }, "extra", 42);
}

/** A user's members that the auth part covers. */
export async function users(user: Realm.User): Promise<unknown[]> {
  const id: string = user.id;
  const accessToken: string | null = user.accessToken;
  const refreshToken: string | null = user.refreshToken;
  const deviceId: string | null = user.deviceId;
  const loggedIn: boolean = user.isLoggedIn && user.state === Realm.UserState.LoggedIn;
  const gone: boolean = user.state === UserState.LoggedOut || user.state === UserState.Removed;
  const state: Realm.UserState = user.state;
  const identities: Realm.UserIdentity[] = user.identities;
  const identityIds: string[] = identities.map((identity) => identity.id);
  const providers: string[] = identities.map((identity) => identity.providerType);
  const provider: string = user.providerType;
  const customData: Record<string, unknown> = user.customData;
  const refreshed: Record<string, unknown> = await user.refreshCustomData();
  const profile: Record<string, unknown> = user.profile;
  await user.linkCredentials(Realm.Credentials.emailPassword("ada@example.com", "pw-123456"));
  await user.logOut();
  return [id, accessToken, refreshToken, deviceId, loggedIn, gone, state, identityIds, providers, provider, customData, refreshed, profile];
}

/** `ProviderType`: the providers of a user and of its identities. */
export function providers(user: Realm.User): boolean[] {
  const byKey: boolean = user.providerType === Realm.ProviderType.ApiKey;
  const provider: Realm.ProviderType = user.providerType;
  const first: Realm.ProviderType | undefined = user.identities[0]?.providerType;
  const local = user.identities.some((identity) => identity.providerType === ProviderType.LocalUserPass);
  const all: Realm.ProviderType[] = [
    Realm.ProviderType.AnonUser,
    Realm.ProviderType.ApiKey,
    Realm.ProviderType.LocalUserPass,
    Realm.ProviderType.CustomFunction,
    Realm.ProviderType.CustomToken,
    Realm.ProviderType.OAuth2Google,
    Realm.ProviderType.OAuth2Facebook,
    Realm.ProviderType.OAuth2Apple,
  ];
  return [byKey, local, all.includes(provider), first === undefined];
}

/** `UserState.Active` (deprecated in v12, never a user's state). */
export function deprecatedActive(user: Realm.User): boolean {
  const active: Realm.UserState = Realm.UserState.Active;
  return user.state === Realm.UserState.Active || active === UserState.Active;
}

/** The vendor's API key page, typed. */
export async function apiKeys(app: Realm.App, user: Realm.User): Promise<ApiKey[]> {
  const client: Realm.Auth.ApiKeyAuth = user.apiKeys;
  const created: SecretApiKey = await client.create("apiKeyName");
  const secret: Realm.SecretApiKey = created;
  const value: string = secret.key;
  const fetched: Realm.ApiKey = await client.fetch(created._id);
  const alsoFetched: Realm.Auth.ApiKey = fetched;
  const name: string = alsoFetched.name;
  const disabled: boolean = fetched.disabled;
  await client.disable(fetched._id);
  await client.enable(fetched._id);
  await app.logIn(Realm.Credentials.apiKey(value));
  await client.delete(created._id);
  void [name, disabled];
  return client.fetchAll();
}

/** App and user listeners. */
export function listeners(app: Realm.App, user: Realm.User): void {
  const onApp = () => console.log("app changed");
  app.addListener(onApp);
  app.removeListener(onApp);
  app.removeAllListeners();
  const onUser = (): void => undefined;
  user.addListener(onUser);
  user.removeListener(onUser);
  user.removeAllListeners();
}

/** Logging: levels (per category), the entry logger, and the two-argument one with its parameters annotated. */
export function logging(): void {
  Realm.setLogLevel("debug");
  Realm.setLogLevel("all");
  Realm.setLogLevel("off");
  Realm.setLogLevel("debug", "Realm.App");
  Realm.setLogLevel("warn", "Realm");
  Realm.setLogger(({ level, message, category }) => console.log(`[${category} - ${level}] ${message}`));
  // realm's overloads type the object form first, so an unannotated
  // `(level, message) => …` has implicitly-any parameters against realm's
  // declarations (TS7006): v12 code annotates them.
  Realm.setLogger((level: string, message: string) => console.log(level, message));
  Realm.shutdown();
}

/** realm's log types. */
export function logTypes(): unknown[] {
  const entry: Realm.LogEntry = { category: "Realm.App", level: "info", message: "hello" };
  const category: Realm.LogCategory = "Realm.SDK";
  const callback: Realm.LoggerCallback = (e: Realm.LogEntry) => console.log(e.message);
  const one: Realm.LoggerCallback1 = (level, message) => console.log(level, message);
  const two: Realm.LoggerCallback2 = ({ message }) => console.log(message);
  Realm.setLogger(two);
  Realm.setLogger(one);
  return [entry, category, callback];
}

/** `realm/experimental/base-url`. */
export async function experimentalBaseUrl(app: Realm.App): Promise<string> {
  await app.updateBaseUrl("https://example.com");
  await app.updateBaseUrl(null);
  return app.baseUrl;
}
