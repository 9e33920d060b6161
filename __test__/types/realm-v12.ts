// What realm v12's published declarations cannot express, checked on ours
// alone. Compiled by `tsc -p tsconfig.json` (npm run lint, .ci/run) and by
// scripts/type-test.mjs, which also compares ours with realm@12.15.0's own
// declarations (realm-v12-official.mts) and compiles v12 code against both
// (v12-code.mts). Checks that do not hold yet: realm-v12.pending.mts.
import { ErrorCode } from "realm-auth-native";

/** Compiles only when `T` is `true`. */
type Assert<T extends true> = T;
/** Whether `A` is assignable to `B` (not distributed over unions). */
type Fits<A, B> = [A] extends [B] ? true : false;

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
