// The quickstart: the vendor's "Create & Manage User API Keys" page, run
// against the App Services emulator of the realm-auth-server package (a dev
// dependency). Each of the page's code blocks
// stands below in its own block scope, unchanged but for the literal key id
// in the `fetch` example; lines marked `// quickstart:` are ours (setup and
// printing). Run it with `npm run demo`.
import Realm from "realm-auth-native";
import { Emulator } from "realm-auth-server"; // quickstart

const email = "ada@example.com";
const password = "correct horse battery staple";

/** Shows a key value without revealing it. */
function masked(value: string): string {
  return `${value.slice(0, 4)}… (${value.length} characters)`;
}

function step(title: string, result?: unknown): void {
  console.log(`✔ ${title}`);
  if (result !== undefined) console.log(`    ${JSON.stringify(result)}`);
}

async function main(): Promise<void> {
  const emulator = await Emulator.start(); // quickstart: a local server, no cloud
  try {
    step(`emulator listening on ${emulator.baseUrl} (app id ${emulator.appId})`);
    const app = new Realm.App({ id: emulator.appId, baseUrl: emulator.baseUrl });
    await app.emailPasswordAuth.registerUser({ email, password });
    const owner = await app.logIn(Realm.Credentials.emailPassword(email, password));
    step(`registered and logged in ${email}`, { userId: owner.id });

    let createdKey: Realm.SecretApiKey; // quickstart: the key the page creates

    {
      const user = app.currentUser;
      const key = await user.apiKeys.create("apiKeyName");
      createdKey = key; // quickstart
      step('user.apiKeys.create("apiKeyName")', { ...key, key: masked(key.key) }); // quickstart
    }

    {
      const user = app.currentUser;
      // List all of a user's keys
      const keys = await user.apiKeys.fetchAll();
      // Get a specific key by its ID
      const key = await user.apiKeys.fetch(createdKey._id);
      step("user.apiKeys.fetchAll()", keys); // quickstart
      step(`user.apiKeys.fetch("${createdKey._id}")`, key); // quickstart
    }

    {
      // Get the ID of a User API Key
      const user = app.currentUser;
      const apiKeys = await user.apiKeys.fetchAll();
      const keyId = apiKeys[0]["_id"];
      // Enable the User API Key
      await user.apiKey.enable(keyId);
      // Disable the User API Key
      await user.apiKey.disable(keyId);
      step(`user.apiKey.enable("${keyId}") then user.apiKey.disable("${keyId}")`); // quickstart
      step("the key now reads", await user.apiKeys.fetch(keyId)); // quickstart
    }

    // quickstart: a disabled key cannot log in; once enabled again it can.
    try {
      await app.logIn(Realm.Credentials.apiKey(createdKey.key));
      throw new Error("logging in with a disabled key succeeded");
    } catch (err) {
      const e = err as Error & { code?: number; statusCode?: number; errorCode?: string };
      if (e.code !== Realm.ErrorCode.AuthError) throw err;
      step("Credentials.apiKey(key.key) while disabled is refused", {
        message: e.message,
        code: e.code,
        statusCode: e.statusCode,
        errorCode: e.errorCode,
      });
    }
    await app.currentUser.apiKeys.enable(createdKey._id);
    const keyUser = await app.logIn(Realm.Credentials.apiKey(createdKey.key));
    if (keyUser.id !== owner.id) throw new Error("the API key logged in another user");
    step("enabled again, Credentials.apiKey(key.key) logs in the same user", { userId: keyUser.id });

    // quickstart: the server will not delete the key the calling session came
    // from, so log in with email/password again first.
    await app.logIn(Realm.Credentials.emailPassword(email, password));
    step("logged in again with email/password");

    {
      // Get the ID of a User API Key
      const user = app.currentUser;
      const apiKeys = await user.apiKeys.fetchAll();
      const keyId = apiKeys[0]["_id"];
      // Delete the User API Key
      await user.apiKey.delete(keyId);
      step(`user.apiKey.delete("${keyId}")`); // quickstart
      step("keys left", await user.apiKeys.fetchAll()); // quickstart
    }
  } finally {
    await emulator.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
