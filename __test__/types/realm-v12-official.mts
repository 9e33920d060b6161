// Our types next to realm@12.15.0's published declarations (fetched from the
// npm registry by scripts/type-test.mjs, which compiles this file with and
// without `exactOptionalPropertyTypes`). Every check here holds today and must
// keep holding; checks that do not hold yet are in
// realm-v12-official.pending.mts.
//
// Directions: "ours → realm" (a value of ours where code expects realm's type:
// results, and instances passed around) and "realm → ours" (a value of
// realm's type where ours is expected: arguments, configuration objects, data
// realm's types describe).
//
// Not compiled by `tsc -p tsconfig.json` (an .mts file is outside its
// `__test__/**/*.ts`): "realm" only resolves in the type test's programs.
import Realm from "realm";
import "realm/experimental/base-url"; // adds App.baseUrl and App.updateBaseUrl() to realm's App
import * as Ours from "realm-auth-native";
import type { AnyFree, Assert, FailingKeys, Fits, IsAny, NoKeys, Not, Public, RejectedKeys, Resolved, Same, StrictMethods } from "./type-helpers.mjs";

/**
 * Members of realm's User that this package leaves out on purpose (Atlas
 * Functions, MongoDB and push: not the auth part; docs/MIGRATING.md).
 */
export type UserOutOfScope = "functions" | "callFunction" | "push" | "mongoClient";

/** realm's User, as far as the auth part goes. */
export type RealmAuthUser = Omit<Realm.User, UserOutOfScope>;

/**
 * realm's App with `U` where realm has its User. realm declares `App` with
 * private members (`listeners`, statics): that makes it nominal, so nothing
 * but realm's own class is assignable to `Realm.App` itself (see `Nominal`
 * below); code that annotates `Realm.App` gets ours after the switch, so the
 * public side is what has to match.
 */
export type RealmAppWith<U> = Omit<
  Public<Realm.App>,
  "logIn" | "currentUser" | "allUsers" | "switchUser" | "removeUser" | "deleteUser"
> & {
  logIn(...args: Parameters<Realm.App["logIn"]>): Promise<U>;
  readonly currentUser: U | null;
  readonly allUsers: Readonly<Record<string, U>>;
  switchUser(user: U): ReturnType<Realm.App["switchUser"]>;
  removeUser(user: U): ReturnType<Realm.App["removeUser"]>;
  deleteUser(user: U): ReturnType<Realm.App["deleteUser"]>;
};

/** Members present in both. */
type Shared<A, B> = keyof A & keyof B;

// ---------------------------------------------------------------------------
// Guards: realm's types are real types. An import that failed to resolve in
// realm's declarations would give `any` (or `unknown`), which every check
// below would accept.
export type Guards = [
  Assert<AnyFree<Public<Realm.App>>>,
  Assert<AnyFree<typeof Realm.App>>,
  Assert<AnyFree<Realm.User>>,
  Assert<AnyFree<typeof Realm.Credentials>>,
  Assert<AnyFree<Realm.Auth.ApiKeyAuth>>,
  Assert<AnyFree<Realm.Auth.EmailPasswordAuth>>,
  Assert<Resolved<Realm.ApiKey>>,
  Assert<Resolved<Realm.SecretApiKey>>,
  Assert<Resolved<Required<Realm.AppConfiguration>>>,
  Assert<Resolved<Required<Realm.Metadata>>>,
  Assert<Resolved<Realm.UserIdentity>>,
  Assert<Resolved<typeof Realm.MetadataMode>>,
  Assert<Resolved<typeof Realm.UserState>>,
  Assert<Resolved<typeof Realm.ProviderType>>,
  Assert<Resolved<Realm.DefaultUserProfileData>>,
  Assert<Resolved<Realm.LogEntry>>,
  Assert<Not<IsAny<Realm.BSON.ObjectId>>>,
  Assert<Not<IsAny<NonNullable<Realm.AppConfiguration["fetch"]>>>>,
  Assert<Not<IsAny<Parameters<typeof Realm.setLogger>[0]>>>,
  // The base-url augmentation applied to realm's App.
  Assert<Fits<Public<Realm.App>, { readonly baseUrl: string; updateBaseUrl(url: string | null): Promise<void> }>>,
  // Ours too: no `any` in the types compared (a member typed `any` would
  // pass every check below).
  Assert<AnyFree<Ours.App>>,
  Assert<AnyFree<typeof Ours.App>>,
  Assert<AnyFree<Ours.User>>,
  Assert<AnyFree<Ours.ApiKeyAuth>>,
  Assert<AnyFree<Ours.EmailPasswordAuth>>,
  Assert<AnyFree<Ours.Credentials>>,
  Assert<AnyFree<typeof Ours.Credentials>>,
  Assert<AnyFree<Ours.ApiKey>>,
  Assert<AnyFree<Ours.SecretApiKey>>,
  Assert<AnyFree<Required<Ours.AppConfiguration>>>,
  Assert<AnyFree<Required<Ours.Metadata>>>,
  Assert<AnyFree<Ours.UserIdentity>>,
  Assert<AnyFree<typeof Ours.Auth>>,
  // Controls: the checks can fail.
  Assert<Not<Fits<{}, Public<Realm.App>>>>,
  Assert<Not<Fits<{ id: string }, RealmAuthUser>>>,
  Assert<Not<Fits<Omit<Ours.User, "apiKeys">, RealmAuthUser>>>,
  Assert<Not<Fits<{ _id: number; name: string; disabled: boolean }, Realm.ApiKey>>>,
];

/** realm's App is nominal (private members): not even a copy of its public side fits. */
export type Nominal = [Assert<Not<Fits<Public<Realm.App>, Realm.App>>>, Assert<Not<Fits<Ours.App, Realm.App>>>];

// ---------------------------------------------------------------------------
// Data types: both directions.
export type Data = [
  Assert<Fits<Ours.ApiKey, Realm.ApiKey>>,
  Assert<Fits<Realm.ApiKey, Ours.ApiKey>>,
  Assert<Fits<Ours.Auth.ApiKey, Realm.Auth.ApiKey>>,
  Assert<Fits<Realm.Auth.ApiKey, Ours.Auth.ApiKey>>,
  Assert<Fits<Ours.SecretApiKey, Realm.SecretApiKey>>,
  Assert<Fits<Realm.SecretApiKey, Ours.SecretApiKey>>,
  Assert<Fits<Ours.Auth.SecretApiKey, Realm.SecretApiKey>>,
  // Configuration: every object realm's types accept, ours accept, with
  // every option set (see AppConfigurationChecks below).
  Assert<Fits<Realm.AppConfiguration, Ours.AppConfiguration>>,
  Assert<Fits<Required<Realm.AppConfiguration>, Ours.AppConfiguration>>,
  Assert<Fits<Realm.Metadata, Ours.Metadata>>,
  Assert<Fits<Required<Realm.Metadata>, Ours.Metadata>>,
  Assert<Fits<{ id: string; metadata: { mode: Realm.MetadataMode.Encryption; encryptionKey: ArrayBuffer } }, Ours.AppConfiguration>>,
  // Enums with the same name are compatible when their members' names are:
  // here both ways, so realm's `MetadataMode.X` and ours are interchangeable.
  // (Their values are not compared by that rule: `${…}` compares them.)
  Assert<Same<`${Ours.MetadataMode}`, `${Realm.MetadataMode}`>>,
  Assert<Same<`${Ours.MetadataMode.InMemory}`, `${Realm.MetadataMode.InMemory}`>>,
  Assert<Same<`${Ours.MetadataMode.NoEncryption}`, `${Realm.MetadataMode.NoEncryption}`>>,
  Assert<Same<`${Ours.MetadataMode.Encryption}`, `${Realm.MetadataMode.Encryption}`>>,
  Assert<Same<`${Ours.MetadataMode.NoMetadata}`, `${Realm.MetadataMode.NoMetadata}`>>,
  Assert<Fits<Realm.MetadataMode, Ours.MetadataMode>>,
  Assert<Fits<Ours.MetadataMode, Realm.MetadataMode>>,
  Assert<Fits<typeof Ours.MetadataMode, typeof Realm.MetadataMode>>,
  Assert<Fits<typeof Realm.MetadataMode, typeof Ours.MetadataMode>>,
  Assert<Fits<Ours.UserState, Realm.UserState>>,
  Assert<Fits<Realm.UserState, Ours.UserState>>,
  Assert<Fits<typeof Realm.UserState, typeof Ours.UserState>>,
  Assert<Same<`${Ours.UserState}`, `${Realm.UserState}`>>,
  Assert<Same<`${Ours.UserState.Active}`, `${Realm.UserState.Active}`>>,
  Assert<Same<`${Ours.UserState.LoggedIn}`, `${Realm.UserState.LoggedIn}`>>,
  Assert<Same<`${Ours.UserState.LoggedOut}`, `${Realm.UserState.LoggedOut}`>>,
  Assert<Same<`${Ours.UserState.Removed}`, `${Realm.UserState.Removed}`>>,
  Assert<Fits<Ours.ProviderType, Realm.ProviderType>>,
  Assert<Fits<Realm.ProviderType, Ours.ProviderType>>,
  Assert<Fits<typeof Realm.ProviderType, typeof Ours.ProviderType>>,
  Assert<Same<`${Ours.ProviderType}`, `${Realm.ProviderType}`>>,
  Assert<Same<`${Ours.ProviderType.AnonUser}`, `${Realm.ProviderType.AnonUser}`>>,
  Assert<Same<`${Ours.ProviderType.ApiKey}`, `${Realm.ProviderType.ApiKey}`>>,
  Assert<Same<`${Ours.ProviderType.LocalUserPass}`, `${Realm.ProviderType.LocalUserPass}`>>,
  Assert<Same<`${Ours.ProviderType.CustomFunction}`, `${Realm.ProviderType.CustomFunction}`>>,
  Assert<Same<`${Ours.ProviderType.CustomToken}`, `${Realm.ProviderType.CustomToken}`>>,
  Assert<Same<`${Ours.ProviderType.OAuth2Google}`, `${Realm.ProviderType.OAuth2Google}`>>,
  Assert<Same<`${Ours.ProviderType.OAuth2Facebook}`, `${Realm.ProviderType.OAuth2Facebook}`>>,
  Assert<Same<`${Ours.ProviderType.OAuth2Apple}`, `${Realm.ProviderType.OAuth2Apple}`>>,
  Assert<Fits<Ours.UserIdentity, Realm.UserIdentity>>,
  Assert<Fits<Realm.UserIdentity, Ours.UserIdentity>>,
  // Log entries and categories.
  Assert<Fits<Ours.LogEntry, Realm.LogEntry>>,
  Assert<Fits<Realm.LogEntry, Ours.LogEntry>>,
  Assert<Same<Ours.LogCategory, Realm.LogCategory>>,
  Assert<Same<Ours.LogLevel, Realm.LogEntry["level"]>>,
  Assert<Fits<Realm.LoggerCallback, Ours.LoggerCallback>>,
  Assert<Fits<Ours.LoggerCallback, Realm.LoggerCallback>>,
  Assert<Fits<Realm.LoggerCallback1, Ours.LoggerCallback1>>,
  Assert<Fits<Realm.LoggerCallback2, Ours.LoggerCallback2>>,
];

// AppConfiguration: every key of realm's, each taking what realm's takes
// (`fetch`, the deprecated `app` and `multiplexSessions` are accepted and
// ignored).
export type AppConfigurationChecks = [
  NoKeys<Exclude<keyof Realm.AppConfiguration, keyof Ours.AppConfiguration>>,
  NoKeys<RejectedKeys<Required<Realm.AppConfiguration>, Required<Ours.AppConfiguration>>>,
  Assert<Fits<Realm.AppConfiguration["fetch"], Ours.AppConfiguration["fetch"]>>,
  // realm's `AnyFetch` has `any` parameters, so the line above is weak: the
  // fetch an app passes most often must fit too.
  Assert<Fits<typeof globalThis.fetch, NonNullable<Ours.AppConfiguration["fetch"]>>>,
  Assert<Fits<{ id: string; fetch: typeof globalThis.fetch }, Ours.AppConfiguration>>,
  Assert<Fits<Realm.AppConfiguration["app"], Ours.AppConfiguration["app"]>>,
  Assert<Fits<Realm.LocalAppConfiguration, Ours.LocalAppConfiguration>>,
  Assert<Fits<Realm.AppConfiguration["multiplexSessions"], Ours.AppConfiguration["multiplexSessions"]>>,
];

// ---------------------------------------------------------------------------
// Provider clients: ours where realm's are expected, and every argument
// realm's methods take is taken by ours (StrictMethods compares parameters
// contravariantly).
export type Clients = [
  Assert<Fits<Ours.ApiKeyAuth, Realm.Auth.ApiKeyAuth>>,
  Assert<Fits<Ours.Auth.ApiKeyAuth, Realm.Auth.ApiKeyAuth>>,
  Assert<Fits<StrictMethods<Ours.ApiKeyAuth>, StrictMethods<Realm.Auth.ApiKeyAuth>>>,
  Assert<Fits<Realm.Auth.ApiKeyAuth, Pick<Ours.ApiKeyAuth, keyof Realm.Auth.ApiKeyAuth>>>,
  Assert<Fits<Ours.EmailPasswordAuth, Realm.Auth.EmailPasswordAuth>>,
  Assert<Fits<Ours.Auth.EmailPasswordAuth, Realm.Auth.EmailPasswordAuth>>,
  Assert<Fits<StrictMethods<Ours.EmailPasswordAuth>, StrictMethods<Realm.Auth.EmailPasswordAuth>>>,
  Assert<Fits<Realm.Auth.EmailPasswordAuth, Pick<Ours.EmailPasswordAuth, keyof Realm.Auth.EmailPasswordAuth>>>,
  // `Realm.Auth` holds the same values.
  Assert<Fits<keyof typeof Realm.Auth, keyof typeof Ours.Auth>>,
];

// ---------------------------------------------------------------------------
// Credentials: an opaque object in realm's types; every factory of realm's
// exists here and takes what realm's takes.
/** realm's factories but the overloaded one (checked by its overloads below). */
type CredentialFactories = Exclude<keyof typeof Realm.Credentials, "prototype" | "emailPassword">;
export type CredentialsChecks = [
  Assert<Fits<Ours.Credentials, Realm.Credentials>>,
  NoKeys<Exclude<keyof typeof Realm.Credentials, keyof typeof Ours.Credentials>>,
  NoKeys<FailingKeys<typeof Ours.Credentials, Omit<typeof Realm.Credentials, "prototype">>>,
  Assert<Fits<Pick<StrictMethods<typeof Ours.Credentials>, CredentialFactories>, Pick<StrictMethods<typeof Realm.Credentials>, CredentialFactories>>>,
  // emailPassword is overloaded in realm: both overloads.
  Assert<Fits<[{ email: string; password: string }], Parameters<typeof Ours.Credentials.emailPassword>>>,
  Assert<Fits<[string, string], Parameters<typeof Ours.Credentials.emailPassword>>>,
  Assert<Fits<ReturnType<typeof Ours.Credentials.emailPassword>, Realm.Credentials>>,
  // google takes both of realm's forms.
  Assert<Fits<Parameters<typeof Realm.Credentials.google>, Parameters<typeof Ours.Credentials.google>>>,
];

// ---------------------------------------------------------------------------
// User: ours where realm's is expected (members of the auth part), and
// realm's member types accepted by ours.
/** Members whose parameters are handles of the same library (Credentials): compared bivariantly. */
type UserHandleParameters = "linkCredentials";
type UserShared = Shared<RealmAuthUser, Ours.User>;
export type UserChecks = [
  Assert<Fits<Ours.User, RealmAuthUser>>,
  NoKeys<FailingKeys<Ours.User, RealmAuthUser>>,
  Assert<Fits<StrictMethods<Omit<Ours.User, UserHandleParameters>>, StrictMethods<Omit<RealmAuthUser, UserHandleParameters>>>>,
  // realm → ours for the members both declare: what realm's types say these
  // members hold, ours say they may hold.
  Assert<Fits<Pick<RealmAuthUser, UserShared>, Pick<Ours.User, UserShared>>>,
  // Every member of realm's User but the out-of-scope ones exists here.
  Assert<Same<Exclude<keyof Realm.User, keyof Ours.User>, UserOutOfScope>>,
];

// A user's profile: realm's DefaultUserProfileData, both ways.
type ProfileFields = "name" | "email" | "pictureUrl" | "firstName" | "lastName" | "gender" | "birthday" | "minAge" | "maxAge";
export type ProfileChecks = [
  Assert<Fits<Ours.User["profile"]["email"], string | undefined>>,
  Assert<Fits<Ours.User["profile"][ProfileFields], string | undefined>>,
  Assert<Fits<Ours.User["profile"], Realm.DefaultUserProfileData>>,
  Assert<Fits<Realm.DefaultUserProfileData, Ours.User["profile"]>>,
];

// The generics' defaults, both ways, and AnyUser.
export type GenericDefaults = [
  Assert<Fits<Realm.DefaultFunctionsFactory, Ours.DefaultFunctionsFactory>>,
  Assert<Fits<Ours.DefaultFunctionsFactory, Realm.DefaultFunctionsFactory>>,
  Assert<Fits<Realm.DefaultUserProfileData, Ours.DefaultUserProfileData>>,
  Assert<Fits<Ours.DefaultUserProfileData, Realm.DefaultUserProfileData>>,
  Assert<Fits<Ours.User, Ours.AnyUser>>,
];

// A generic User (`User<FunctionsFactory, CustomData, Profile>`): its custom
// data and profile typed by its parameters, and every member realm's has.
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

// ---------------------------------------------------------------------------
// App: the public side (see RealmAppWith), ours' User where realm has its own.
/** Members that hand out realm's User. */
type AppUserMembers = "logIn" | "currentUser" | "allUsers";
/** Members that take a User (realm's `AnyUser`): a handle of the same library. */
type AppUserParameters = "switchUser" | "removeUser" | "deleteUser";
type AppPlain = Exclude<keyof Public<Realm.App>, AppUserMembers | AppUserParameters>;
export type AppChecks = [
  Assert<Fits<Ours.App, RealmAppWith<RealmAuthUser>>>,
  NoKeys<FailingKeys<Ours.App, RealmAppWith<RealmAuthUser>>>,
  Assert<Fits<StrictMethods<Pick<Ours.App, AppPlain>>, StrictMethods<Pick<Public<Realm.App>, AppPlain>>>>,
  Assert<Fits<Pick<Public<Realm.App>, AppPlain>, Pick<Ours.App, AppPlain>>>,
  // What realm's App takes as a User, ours takes: the users it hands out.
  Assert<Fits<NonNullable<Ours.App["currentUser"]>, Parameters<Ours.App["switchUser"]>[0]>>,
  Assert<Fits<NonNullable<Ours.App["currentUser"]>, Parameters<Ours.App["removeUser"]>[0]>>,
  Assert<Fits<NonNullable<Ours.App["currentUser"]>, Parameters<Ours.App["deleteUser"]>[0]>>,
  // Every public member of realm's App (with the base-url augmentation) exists here.
  Assert<Fits<Exclude<keyof Public<Realm.App>, keyof Ours.App>, never>>,
  // The static side: both constructor overloads, App.get and App.getApp.
  Assert<Fits<[string], ConstructorParameters<typeof Ours.App>>>,
  Assert<Fits<[Realm.AppConfiguration], ConstructorParameters<typeof Ours.App>>>,
  Assert<Fits<ConstructorParameters<typeof Realm.App>, ConstructorParameters<typeof Ours.App>>>,
  Assert<Fits<Parameters<typeof Realm.App.get>, Parameters<typeof Ours.App.get>>>,
  Assert<Fits<Parameters<typeof Realm.App.getApp>, Parameters<typeof Ours.App.getApp>>>,
  Assert<Fits<ReturnType<typeof Ours.App.get>, RealmAppWith<RealmAuthUser>>>,
  Assert<Fits<ReturnType<typeof Ours.App.getApp>, RealmAppWith<RealmAuthUser>>>,
  Assert<Fits<InstanceType<typeof Ours.App>, RealmAppWith<RealmAuthUser>>>,
];

// A generic App (`App<FunctionsFactory, CustomData>`): hands out users of its
// type arguments, as realm's does.
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

// The listener types, and realm's listeners taken by App.addListener.
export type ListenerTypes = [
  Assert<Fits<Realm.AppChangeCallback, Ours.AppChangeCallback>>,
  Assert<Fits<Realm.UserChangeCallback, Ours.UserChangeCallback>>,
  Assert<Fits<Public<Realm.App>["addListener"], Ours.App["addListener"]>>,
];

// `App.Credentials` (realm's `namespace App`): our Credentials.
export type AppNamespace = [
  Assert<Fits<Ours.App.Credentials, Realm.App.Credentials>>,
  Assert<Same<Ours.App.Credentials, Ours.Credentials>>,
];

// ---------------------------------------------------------------------------
// Module-level functions and enums of `Realm` (statics of realm's Realm class).
export type Functions = [
  // setLogLevel: every level name and category.
  Assert<Fits<Parameters<typeof Realm.setLogLevel>, Parameters<typeof Ours.setLogLevel>>>,
  Assert<Fits<Parameters<typeof Ours.setLogLevel>[0], Parameters<typeof Realm.setLogLevel>[0]>>,
  Assert<Fits<typeof Ours.setLogLevel, typeof Realm.setLogLevel>>,
  // setLogger: ours has a signature for each of realm's overloads.
  Assert<Fits<typeof Ours.setLogger, typeof Realm.setLogger>>,
  Assert<Fits<typeof Ours.shutdown, typeof Realm.shutdown>>,
  // The values of realm's namespace that the auth part covers.
  Assert<
    Fits<
      | "App"
      | "Credentials"
      | "User"
      | "Auth"
      | "MetadataMode"
      | "UserState"
      | "ProviderType"
      | "NumericLogLevel"
      | "BSON"
      | "setLogger"
      | "setLogLevel"
      | "shutdown",
      keyof typeof Realm & keyof typeof Ours
    >
  >,
];

// NumericLogLevel (names and values) and the Logger type of its levels.
export type NumericLogLevelChecks = [
  Assert<Fits<Realm.NumericLogLevel, Ours.NumericLogLevel>>,
  Assert<Fits<typeof Realm.NumericLogLevel, typeof Ours.NumericLogLevel>>,
  Assert<Same<`${Realm.NumericLogLevel}`, `${Ours.NumericLogLevel}`>>,
  Assert<Fits<Realm.Logger, Ours.Logger>>,
];

// setLogger is overloaded in realm: also checked by calls (a conditional type
// only sees an overloaded function's last signature).
declare const logger1: Realm.LoggerCallback1;
declare const logger2: Realm.LoggerCallback2;
Ours.setLogger(logger1);
Ours.setLogger(logger2);
Ours.setLogger((level: Parameters<Realm.LoggerCallback1>[0], message: string) => void [level, message]);
Ours.setLogger(({ category, level, message }) => void [category, level, message]);

// Realm.BSON: realm v12's subset of bson 4, the same package and version.
export type BsonChecks = [
  Assert<Fits<Ours.BSON.ObjectId, Realm.BSON.ObjectId>>,
  Assert<Fits<Realm.BSON.ObjectId, Ours.BSON.ObjectId>>,
  Assert<Fits<ConstructorParameters<typeof Realm.BSON.ObjectId>, ConstructorParameters<typeof Ours.BSON.ObjectId>>>,
  NoKeys<Exclude<keyof typeof Realm.BSON, keyof typeof Ours.BSON>>,
];
