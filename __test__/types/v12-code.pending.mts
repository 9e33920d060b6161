// Code written for realm@12.15.0's declarations that does not compile against
// ours yet. scripts/type-test.mjs compiles it against realm's declarations,
// where all of it must compile (so each expectation is real v12 code), and
// against ours, where errors are expected inside the pending regions only.
// The run lists each region as failing, or as compiling once its fix is in:
// then move the region's code into v12-code.mts (and drop the markers), so
// that it cannot regress.
//
// Keep it self-contained (no relative imports): it is copied and renamed.
import Realm from "realm";

declare const app: Realm.App;
declare const user: Realm.User;

// #region pending app-config-fetch: AppConfiguration has no `fetch`
export const withFetch = new Realm.App({ id: "my-app", fetch: globalThis.fetch });
// #endregion

// #region pending app-config-app: AppConfiguration has no (deprecated) `app`, no LocalAppConfiguration type
export const local: Realm.LocalAppConfiguration = { name: "my-app", version: "1.0.0" };
export const withLocalApp = new Realm.App({ id: "my-app", app: { name: "my-app", version: "1.0.0" } });
// #endregion

// #region pending app-config-multiplex: AppConfiguration has no `multiplexSessions`
export const withMultiplexing = new Realm.App({ id: "my-app", multiplexSessions: true });
// #endregion

// #region pending credentials-oauth: Credentials.google/facebook/apple are not declared
export function oauth(): Realm.Credentials[] {
  return [
    Realm.Credentials.google({ idToken: "id-token" }),
    Realm.Credentials.google({ authCode: "auth-code" }),
    Realm.Credentials.facebook("access-token"),
    Realm.Credentials.apple("id-token"),
  ];
}
// #endregion

// #region pending user-profile: `profile` is Record<string, unknown>, not DefaultUserProfileData
export function profile(): (string | undefined)[] {
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
// #endregion

// Type arguments of the generics regions (spelled without realm's names,
// which have regions of their own).
type Functions = { [name: string]: (...args: unknown[]) => Promise<unknown> };
type CustomData = { plan: "free" | "pro"; seats: number };
type Profile = { nickname?: string; email?: string; [key: string]: unknown };

// #region pending generics-app: App is not generic (App<FunctionsFactory, CustomData>)
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
// #endregion

// #region pending generics-user: User is not generic (User<FunctionsFactory, CustomData, Profile>)
export async function typedUser(u: Realm.User<Functions, CustomData, Profile>): Promise<unknown[]> {
  const plan: "free" | "pro" = u.customData.plan;
  const refreshed: CustomData = await u.refreshCustomData();
  const nickname: string | undefined = u.profile.nickname;
  const email: string | undefined = u.profile.email;
  const plain: Realm.User = user;
  app.switchUser(u);
  return [plan, refreshed, nickname, email, plain];
}
// #endregion

// #region pending bson: no BSON re-export (Realm.BSON.ObjectId)
export async function objectIds(): Promise<Realm.BSON.ObjectId> {
  const key = await user.apiKeys.create("name");
  const id = new Realm.BSON.ObjectId(key._id);
  await user.apiKeys.disable(id.toHexString());
  const fetched = await user.apiKeys.fetch(id.toHexString());
  return new Realm.BSON.ObjectId(fetched._id);
}
// #endregion

// #region pending generic-defaults: no DefaultFunctionsFactory / DefaultUserProfileData / AnyUser types
export const functions: Realm.DefaultFunctionsFactory = {};
export const defaultProfile: Realm.DefaultUserProfileData = { email: "ada@example.com" };
export const anyUser: Realm.AnyUser = user;
// #endregion

// #region pending listener-types: no AppChangeCallback / UserChangeCallback types
export const onApp: Realm.AppChangeCallback = () => undefined;
export const onUser: Realm.UserChangeCallback = () => undefined;
// #endregion

// #region pending numeric-log-level: no NumericLogLevel enum, no Logger type (Sync.setLogger's callback)
export function numericLevels(): unknown[] {
  const numeric: Realm.NumericLogLevel = Realm.NumericLogLevel.Warn;
  const all: number = Realm.NumericLogLevel.All + Realm.NumericLogLevel.Off;
  const sync: Realm.Logger = (level: Realm.NumericLogLevel, message: string) => console.log(level, message);
  return [numeric, all, sync];
}
// #endregion

// #region pending app-credentials-type: no `App.Credentials` type (realm's `namespace App`)
export const viaApp: Realm.App.Credentials = Realm.Credentials.anonymous();
// #endregion
