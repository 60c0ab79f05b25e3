// The page: sign in, then documents on the side and the conversation in the middle.

import { Api, describe } from "./api.js";
import { Auth } from "./auth.js";
import { Chat } from "./chat.js";
import { $, say } from "./dom.js";
import { Documents } from "./documents.js";
import { Threads } from "./threads.js";

async function main() {
  const config = await (await fetch("/web/config", { headers: { Accept: "application/json" } })).json();
  let auth;
  const api = new Api(
    () => auth.token(),
    () => auth.signOut().then(() => say($("#sign-in-status"), "Your session has ended. Sign in again.")),
  );
  const documents = new Documents(api, {
    list: $("#documents"),
    picker: $("#file-picker"),
    dropZone: $("#drop-zone"),
    status: $("#documents-status"),
  });
  const chat = new Chat(
    api,
    config,
    {
      messages: $("#messages"),
      form: $("#ask"),
      input: $("#question"),
      send: $("#send"),
      stop: $("#stop"),
      error: $("#chat-error"),
      heading: $("#chat-title"),
      dialog: $("#passage"),
    },
    { onThreadChanged: (id) => refreshThreads(id) },
  );
  const threads = new Threads(
    api,
    { list: $("#threads"), status: $("#threads-status") },
    {
      onOpen: (thread) => {
        threads.select(thread.thread_id);
        chat.open(thread);
      },
      onDeleted: (id) => {
        if (chat.threadId === id) chat.start();
      },
    },
  );
  const refreshThreads = (active) =>
    threads
      .refresh()
      .then(() => threads.select(active))
      .catch((error) => say($("#threads-status"), `Conversations could not be listed: ${describe(error)}`));

  const show = (user) => {
    $("#loading").hidden = true;
    $("#sign-in").hidden = Boolean(user);
    $("#workspace").hidden = !user;
    $("#sign-out").hidden = !user;
    $("#who").hidden = !user;
    $("#who").textContent = user ? `Signed in as ${user.email}` : "";
    documents.reset();
    threads.reset();
    chat.start();
    if (!user) {
      showSignIn(auth);
      return;
    }
    documents.refresh().catch((error) => say($("#documents-status"), `Documents could not be listed: ${describe(error)}`));
    refreshThreads(null);
    $("#question").focus();
  };
  auth = new Auth(config, show);

  $("#new-thread").addEventListener("click", () => {
    threads.select(null);
    chat.start();
    $("#question").focus();
  });
  $("#sign-out").addEventListener("click", () => auth.signOut());
  $("#passage [data-close]").addEventListener("click", () => $("#passage").close());
  wireSignIn(auth);
  await auth.start();
}

function showSignIn(auth) {
  $("#supabase-form").hidden = !auth.supabaseConfigured;
  $("#local-form").hidden = !auth.config.dev_sign_in;
  $("#no-sign-in").hidden = auth.supabaseConfigured || auth.config.dev_sign_in;
  const first = auth.supabaseConfigured ? "#sb-email" : "#local-email";
  $(first)?.focus();
}

function wireSignIn(auth) {
  const status = $("#sign-in-status");
  $("#local-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    say(status, "");
    try {
      await auth.signInLocally($("#local-email").value.trim());
    } catch (error) {
      say(status, `Sign-in failed: ${describe(error)}`);
    }
  });
  $("#supabase-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("#sb-email").value.trim();
    const password = $("#sb-password").value;
    const action = event.submitter?.dataset.action ?? "password";
    say(status, "");
    try {
      if (action === "link") {
        await auth.sendLink(email);
        say(status, `A sign-in link is on its way to ${email}.`);
      } else if (action === "sign-up") {
        say(status, await auth.signUp(email, password));
      } else {
        await auth.signInWithPassword(email, password);
      }
    } catch (error) {
      say(status, `Sign-in failed: ${error.message}`);
    }
  });
}

main().catch((error) => {
  $("#loading").hidden = true;
  say($("#fatal"), `The page could not start: ${error.message}`);
});
