// Comparisons with realm@12.15.0's declarations that do not hold yet (see
// realm-v12-official.mts for the ones that do). scripts/type-test.mjs expects
// errors inside the pending regions only, lists each region as failing or as
// compiling once its fix is in; then move the region into
// realm-v12-official.mts (and shrink the `UserPending…` lists there) so that
// it cannot regress. A region id names one fix; v12-code.pending.mts uses the
// same ids for the v12 code that the fix makes compile.
import Realm from "realm";
import "realm/experimental/base-url";
import * as Ours from "realm-auth-native";
import type { Assert, Fits, FailingKeys, NoKeys, Public, RejectedKeys, Same } from "./type-helpers.mjs";
import type { RealmAppWith, UserOutOfScope } from "./realm-v12-official.mjs";

type AppUserMembers = "logIn" | "currentUser" | "allUsers";

// #region pending user-profile: `profile` is Record<string, unknown>, not DefaultUserProfileData
type ProfileFields = "name" | "email" | "pictureUrl" | "firstName" | "lastName" | "gender" | "birthday" | "minAge" | "maxAge";
export type ProfileChecks = [
  Assert<Fits<Ours.User["profile"]["email"], string | undefined>>,
  Assert<Fits<Ours.User["profile"][ProfileFields], string | undefined>>,
  Assert<Fits<Ours.User["profile"], Realm.DefaultUserProfileData>>,
  Assert<Fits<Realm.DefaultUserProfileData, Ours.User["profile"]>>,
];
// #endregion

// #region pending generics-user: User is not generic (User<FunctionsFactory, CustomData, Profile>)
type CustomData = { plan: "free" | "pro" };
type Profile = Realm.DefaultUserProfileData & { nickname?: string };
export type UserGenericChecks = [
  Assert<Fits<Ours.User<Realm.DefaultFunctionsFactory, CustomData, Profile>["customData"], CustomData>>,
  Assert<Fits<Ours.User<Realm.DefaultFunctionsFactory, CustomData, Profile>["profile"], Profile>>,
  Assert<Fits<ReturnType<Ours.User<Realm.DefaultFunctionsFactory, CustomData>["refreshCustomData"]>, Promise<CustomData>>>,
  NoKeys<
    FailingKeys<
      Ours.User<Realm.DefaultFunctionsFactory, CustomData, Profile>,
      Omit<Realm.User<Realm.DefaultFunctionsFactory, CustomData, Profile>, UserOutOfScope>
    >
  >,
];
// #endregion

// #region pending generics-app: App is not generic (App<FunctionsFactory, CustomData>)
type TypedRealmUser = Omit<Realm.User<Realm.DefaultFunctionsFactory, CustomData>, UserOutOfScope>;
export type AppGenericChecks = [
  Assert<Fits<NonNullable<Ours.App<Realm.DefaultFunctionsFactory, CustomData>["currentUser"]>["customData"], CustomData>>,
  NoKeys<
    FailingKeys<
      Pick<Ours.App<Realm.DefaultFunctionsFactory, CustomData>, AppUserMembers>,
      Pick<RealmAppWith<TypedRealmUser>, AppUserMembers>
    >
  >,
];
// #endregion

// #region pending generic-defaults: no DefaultFunctionsFactory / DefaultUserProfileData / AnyUser types
export type GenericDefaults = [
  Assert<Fits<Realm.DefaultFunctionsFactory, Ours.DefaultFunctionsFactory>>,
  Assert<Fits<Ours.DefaultFunctionsFactory, Realm.DefaultFunctionsFactory>>,
  Assert<Fits<Realm.DefaultUserProfileData, Ours.DefaultUserProfileData>>,
  Assert<Fits<Ours.DefaultUserProfileData, Realm.DefaultUserProfileData>>,
  Assert<Fits<Ours.User, Ours.AnyUser>>,
];
// #endregion

// #region pending app-config-fetch: AppConfiguration has no `fetch`
export type FetchChecks = [
  Assert<Fits<Realm.AppConfiguration["fetch"], Ours.AppConfiguration["fetch"]>>,
  // realm's `AnyFetch` has `any` parameters, so the line above is weak: the
  // fetch an app passes most often must fit too.
  Assert<Fits<typeof globalThis.fetch, NonNullable<Ours.AppConfiguration["fetch"]>>>,
  Assert<Fits<{ id: string; fetch: typeof globalThis.fetch }, Ours.AppConfiguration>>,
];
// #endregion

// #region pending app-config-app: AppConfiguration has no (deprecated) `app`, no LocalAppConfiguration type
export type LocalAppChecks = [
  Assert<Fits<Realm.AppConfiguration["app"], Ours.AppConfiguration["app"]>>,
  Assert<Fits<Realm.LocalAppConfiguration, Ours.LocalAppConfiguration>>,
];
// #endregion

// #region pending app-config-multiplex: AppConfiguration has no `multiplexSessions`
export type MultiplexChecks = [
  Assert<Fits<Realm.AppConfiguration["multiplexSessions"], Ours.AppConfiguration["multiplexSessions"]>>,
];
// #endregion

// #region pending app-config-keys: every key of realm's AppConfiguration (the three regions above, together)
export type AppConfigurationKeys = NoKeys<Exclude<keyof Realm.AppConfiguration, keyof Ours.AppConfiguration>>;
export type AppConfigurationMembers = NoKeys<RejectedKeys<Required<Realm.AppConfiguration>, Required<Ours.AppConfiguration>>>;
// #endregion

// #region pending credentials-oauth: Credentials.google/facebook/apple are not declared
export type OAuthChecks = [
  NoKeys<Exclude<keyof typeof Realm.Credentials, keyof typeof Ours.Credentials>>,
  NoKeys<FailingKeys<typeof Ours.Credentials, Omit<typeof Realm.Credentials, "prototype">>>,
  Assert<Fits<Parameters<typeof Realm.Credentials.google>, Parameters<typeof Ours.Credentials.google>>>,
];
// #endregion

// #region pending numeric-log-level: no NumericLogLevel enum, no Logger type (Sync.setLogger's callback)
export type NumericLogLevelChecks = [
  Assert<Fits<Realm.NumericLogLevel, Ours.NumericLogLevel>>,
  Assert<Fits<typeof Realm.NumericLogLevel, typeof Ours.NumericLogLevel>>,
  Assert<Same<`${Realm.NumericLogLevel}`, `${Ours.NumericLogLevel}`>>,
  Assert<Fits<Realm.Logger, Ours.Logger>>,
];
// #endregion

// #region pending bson: no BSON re-export (Realm.BSON.ObjectId)
export type BsonChecks = [
  Assert<Fits<Ours.BSON.ObjectId, Realm.BSON.ObjectId>>,
  Assert<Fits<Realm.BSON.ObjectId, Ours.BSON.ObjectId>>,
  Assert<Fits<ConstructorParameters<typeof Realm.BSON.ObjectId>, ConstructorParameters<typeof Ours.BSON.ObjectId>>>,
  NoKeys<Exclude<keyof typeof Realm.BSON, keyof typeof Ours.BSON>>,
];
// #endregion

// #region pending listener-types: no AppChangeCallback / UserChangeCallback types
export type ListenerTypes = [
  Assert<Fits<Realm.AppChangeCallback, Ours.AppChangeCallback>>,
  Assert<Fits<Realm.UserChangeCallback, Ours.UserChangeCallback>>,
  Assert<Fits<Public<Realm.App>["addListener"], Ours.App["addListener"]>>,
];
// #endregion

// #region pending app-credentials-type: no `App.Credentials` type (realm's `namespace App`)
export type AppNamespace = [
  Assert<Fits<Ours.App.Credentials, Realm.App.Credentials>>,
  Assert<Same<Ours.App.Credentials, Ours.Credentials>>,
];
// #endregion
