// Runs after `napi build` (the package scripts call it): what napi-rs cannot
// declare. It writes every class as `export declare class X {` with an
// implicit public constructor, while realm v12 declares `App` and `User` with
// type parameters, and `User`, `ApiKeyAuth`, `EmailPasswordAuth` and
// `Credentials` with no public constructor (they throw if called). Idempotent;
// fails if the generated text is not what it expects.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "index.d.ts");
let text = fs.readFileSync(file, "utf8");

const generics = {
  App: "<FunctionsFactoryType extends DefaultFunctionsFactory = DefaultFunctionsFactory, CustomDataType extends DefaultObject = DefaultObject>",
  User: "<UserFunctionsFactoryType extends DefaultFunctionsFactory = DefaultFunctionsFactory, UserCustomDataType extends DefaultObject = DefaultObject, UserProfileDataType extends DefaultUserProfileData = DefaultUserProfileData>",
};
const noConstructor = ["User", "ApiKeyAuth", "EmailPasswordAuth", "Credentials"];

for (const name of ["App", "User", "ApiKeyAuth", "EmailPasswordAuth", "Credentials"]) {
  const plain = `export declare class ${name} {\n`;
  const head = `export declare class ${name}${generics[name] ?? ""} {\n`;
  const body = noConstructor.includes(name) ? "  /** Not constructible: made by the SDK. */\n  private constructor()\n" : "";
  if (text.includes(head + body)) continue;
  const at = text.indexOf(plain);
  if (at < 0 || text.indexOf(plain, at + 1) >= 0) {
    throw new Error(`patch-dts: expected one \`${plain.trim()}\` in ${file}`);
  }
  text = text.slice(0, at) + head + body + text.slice(at + plain.length);
}
fs.writeFileSync(file, text);
