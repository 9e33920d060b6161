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

/** realm's other configuration options: `fetch`, the deprecated `app` (a `LocalAppConfiguration`) and `multiplexSessions`. */
export function moreOptions(): Realm.App[] {
  const withFetch = new Realm.App({ id: "my-app", fetch: globalThis.fetch });
  const local: Realm.LocalAppConfiguration = { name: "my-app", version: "1.0.0" };
  const withLocalApp = new Realm.App({ id: "my-app", app: { name: "my-app", version: "1.0.0" } });
  const withMultiplexing = new Realm.App({ id: "my-app", multiplexSessions: true });
  void local;
  return [withFetch, withLocalApp, withMultiplexing];
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

/** The OAuth credentials (Google's two forms, Facebook, Apple), and realm's `App.Credentials` type. */
export function oauth(): Realm.Credentials[] {
  const viaApp: Realm.App.Credentials = Realm.Credentials.anonymous();
  return [
    Realm.Credentials.google({ idToken: "id-token" }),
    Realm.Credentials.google({ authCode: "auth-code" }),
    Realm.Credentials.facebook("access-token"),
    Realm.Credentials.apple("id-token"),
    viaApp,
  ];
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

/** A user's profile: realm's `DefaultUserProfileData` fields, and any other the provider sends. */
export function profile(user: Realm.User): (string | undefined)[] {
  const email: string | undefined = user.profile.email;
  const name: string | undefined = user.profile.name;
  const picture: string | undefined = user.profile.pictureUrl;
  const first: string | undefined = user.profile.firstName;
  const last: string | undefined = user.profile.lastName;
  const gender: string | undefined = user.profile.gender;
  const birthday: string | undefined = user.profile.birthday;
  const minAge: string | undefined = user.profile.minAge;
  const maxAge: string | undefined = user.profile.maxAge;
  const other: unknown = user.profile["provider-specific"];
  const data: { email?: string; [key: string]: unknown } = user.profile;
  void [other, data];
  return [email, name, picture, first, last, gender, birthday, minAge, maxAge];
}

// Type arguments of the generic App and User below, written out rather than
// built from realm's defaults (those are checked on their own, genericDefaults).
type Functions = { [name: string]: (...args: unknown[]) => Promise<unknown> };
type CustomData = { plan: "free" | "pro"; seats: number };
type Profile = { nickname?: string; email?: string; [key: string]: unknown };

/** A generic App (`App<FunctionsFactory, CustomData>`): its users have typed custom data. */
export async function typedApp(): Promise<unknown[]> {
  const typed = new Realm.App<Functions, CustomData>({ id: "my-app" });
  const loggedIn = await typed.logIn(Realm.Credentials.anonymous());
  const plan: "free" | "pro" = loggedIn.customData.plan;
  const seats: number | undefined = typed.currentUser?.customData.seats;
  const everyone: Readonly<Record<string, Realm.User<Functions, CustomData>>> = typed.allUsers;
  const same: Realm.App<Functions, CustomData> = typed;
  const untyped: Realm.App = Realm.App.get("my-app");
  return [plan, seats, everyone, same, untyped];
}

/** A generic User (`User<FunctionsFactory, CustomData, Profile>`), passed where an App takes any user. */
export async function typedUser(app: Realm.App, user: Realm.User, u: Realm.User<Functions, CustomData, Profile>): Promise<unknown[]> {
  const plan: "free" | "pro" = u.customData.plan;
  const refreshed: CustomData = await u.refreshCustomData();
  const nickname: string | undefined = u.profile.nickname;
  const email: string | undefined = u.profile.email;
  const plain: Realm.User = user;
  app.switchUser(u);
  return [plan, refreshed, nickname, email, plain];
}

/** The generics' defaults: `DefaultFunctionsFactory`, `DefaultUserProfileData`, `AnyUser`. */
export function genericDefaults(user: Realm.User): unknown[] {
  const functions: Realm.DefaultFunctionsFactory = {};
  const defaultProfile: Realm.DefaultUserProfileData = { email: "ada@example.com" };
  const anyUser: Realm.AnyUser = user;
  return [functions, defaultProfile, anyUser];
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

/** The listener types: `AppChangeCallback`, `UserChangeCallback`. */
export function listenerTypes(app: Realm.App, user: Realm.User): void {
  const onApp: Realm.AppChangeCallback = () => undefined;
  const onUser: Realm.UserChangeCallback = () => undefined;
  app.addListener(onApp);
  user.addListener(onUser);
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

/** `NumericLogLevel` and the `Logger` type of its numeric levels (realm's Sync.setLogger callback). */
export function numericLevels(): unknown[] {
  const numeric: Realm.NumericLogLevel = Realm.NumericLogLevel.Warn;
  const all: number = Realm.NumericLogLevel.All + Realm.NumericLogLevel.Off;
  const sync: Realm.Logger = (level: Realm.NumericLogLevel, message: string) => console.log(level, message);
  return [numeric, all, sync];
}

/** `realm/experimental/base-url`. */
export async function experimentalBaseUrl(app: Realm.App): Promise<string> {
  await app.updateBaseUrl("https://example.com");
  await app.updateBaseUrl(null);
  return app.baseUrl;
}

// Realm.BSON: ObjectIds from key ids and back.
export async function objectIds(user: Realm.User): Promise<Realm.BSON.ObjectId> {
  const key = await user.apiKeys.create("name");
  const id = new Realm.BSON.ObjectId(key._id);
  await user.apiKeys.disable(id.toHexString());
  const fetched = await user.apiKeys.fetch(id.toHexString());
  return new Realm.BSON.ObjectId(fetched._id);
}
