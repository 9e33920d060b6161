// Type-level helpers of the realm v12 type test (scripts/type-test.mjs).

/** Compiles only when `T` is `true`. */
export type Assert<T extends true> = T;
/** `true` for `false` and vice versa. */
export type Not<T extends boolean> = T extends true ? false : true;
/** Whether `T` is `any`. */
export type IsAny<T> = 0 extends 1 & T ? true : false;
/** Whether `A` is assignable to `B` (not distributed over unions). */
export type Fits<A, B> = [A] extends [B] ? true : false;
/** Whether `A` and `B` are the same type. */
export type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/**
 * Whether `T` is a real type: neither `any` nor `unknown` nor `never`, and
 * none of its own members is `any`. An import that failed to resolve in a
 * declaration file gives `any`, which every assignability check would accept.
 */
export type Resolved<T> =
  IsAny<T> extends true
    ? false
    : [T] extends [never]
      ? false
      : unknown extends T
        ? false
        : true extends { [K in keyof T]-?: IsAny<T[K]> }[keyof T]
          ? false
          : true;

/**
 * `Resolved<T>`, and no method of `T` returns `any` (or a promise of `any`):
 * an `any` result would make every assignability check on it vacuous.
 */
export type AnyFree<T> =
  Resolved<T> extends false
    ? false
    : true extends {
          [K in keyof T]-?: T[K] extends (...args: never[]) => infer R ? (IsAny<R> extends true ? true : IsAny<Awaited<R>>) : false;
        }[keyof T]
      ? false
      : true;

/**
 * The public instance side of a class. realm declares `App` with `private`
 * members, which make it nominal: nothing but realm's own `App` is assignable
 * to it, so code that annotates `Realm.App` can only ever be compared member by
 * member (mapped types drop private members).
 */
export type Public<T> = { [K in keyof T]: T[K] };

/**
 * Methods as function-typed properties, so that their parameters are compared
 * contravariantly (method parameters are compared bivariantly even under
 * `strict`, which would let a narrower parameter of ours through).
 * Only the last overload of an overloaded method is kept: check those by call.
 */
export type StrictMethods<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => R : T[K];
};

/** The keys of `A` that `B` lacks. */
export type MissingKeys<A, B> = Exclude<keyof A, keyof B>;

/**
 * The keys of `B` whose member in `A` is missing or not assignable. Check it
 * with `NoKeys<…>`, whose error message names them.
 */
export type FailingKeys<A, B> = {
  [K in keyof B]-?: K extends keyof A ? (Fits<A[K], B[K]> extends true ? never : K) : K;
}[keyof B];
/** Compiles only when `K` is `never`; the error names the keys otherwise. */
export type NoKeys<K extends never> = K;
/** The keys of `A` whose member `B` lacks or does not accept (`A[K]` not assignable to `B[K]`). */
export type RejectedKeys<A, B> = {
  [K in keyof A]-?: K extends keyof B ? (Fits<A[K], B[K]> extends true ? never : K) : K;
}[keyof A];
