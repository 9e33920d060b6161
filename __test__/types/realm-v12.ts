// What realm v12's published declarations cannot express, checked on ours
// alone. Compiled by `tsc -p tsconfig.json` (npm run lint, .ci/run) and by
// scripts/type-test.mjs, which also compares ours with realm@12.15.0's own
// declarations (realm-v12-official.mts) and compiles v12 code against both
// (v12-code.mts). It imports the package by its own name: "realm" does not
// resolve under `tsc -p tsconfig.json`.
import { ApiKeyAuth, Auth, Credentials, EmailPasswordAuth, ErrorCode, User } from "realm-auth-native";

/** Compiles only when `T` is `true`. */
type Assert<T extends true> = T;
/** Whether `A` is assignable to `B` (not distributed over unions). */
type Fits<A, B> = [A] extends [B] ? true : false;
/** Whether `A` and `B` are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// realm v12 puts realm-core's numeric app error codes on `err.code` (4334 for
// a missing API key) but declares no enum of them; ours names them. They are
// numbers, comparable with `err.code`.
export type ErrorCodes = [
  Assert<Fits<ErrorCode, number>>,
  Assert<Fits<ErrorCode.APIKeyNotFound, 4334>>,
  Assert<Fits<4334, ErrorCode.APIKeyNotFound>>,
  Assert<Fits<ErrorCode.InvalidPassword, 4349>>,
  Assert<Fits<ErrorCode.AccountNameInUse, 4348>>,
  Assert<Fits<ErrorCode.UserpassTokenInvalid, 4353>>,
];
declare const err: Error & { code?: number };
export const isMissingKey: boolean = err.code === ErrorCode.APIKeyNotFound;

// ErrorCode maps numbers back to names, as a numeric enum does
// (`ErrorCode[4334] === "APIKeyNotFound"`; the binding adds the reverse
// entries at run time): the lookup is typed `string`.
export type ErrorCodeNames = [
  Assert<Same<(typeof ErrorCode)[4334], string>>,
  Assert<Same<(typeof ErrorCode)[ErrorCode.APIKeyNotFound], string>>,
  Assert<Same<(typeof ErrorCode)[number], string>>,
];
export const reverse: string = ErrorCode[4334];
export const reverseOf: string = ErrorCode[ErrorCode.APIKeyNotFound];

// Classes without a JS constructor are not constructible: `new User()` throws
// at run time ("Class contains no `constructor`"), so their declarations have
// a private constructor. (realm's public declarations leave these
// constructible: its @internal constructors are stripped; nobody may
// construct these, so ours can be stricter.) Never called.
export function notConstructible(): void {
  // @ts-expect-error not constructible
  new User();
  // @ts-expect-error not constructible
  new ApiKeyAuth();
  // @ts-expect-error not constructible
  new Auth.ApiKeyAuth();
  // @ts-expect-error not constructible
  new EmailPasswordAuth();
  // @ts-expect-error not constructible
  new Auth.EmailPasswordAuth();
  // @ts-expect-error not constructible
  new Credentials();
}
