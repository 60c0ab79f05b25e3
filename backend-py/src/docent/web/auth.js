// Who is signed in, and their access token: Supabase Auth through supabase-js (loaded only
// when the server names a project), or in development a local token from the API.

import { asError } from "./api.js";

const LOCAL = "docent.local-session";

export class Auth {
  /** `onChange(user)` runs when someone signs in or out (`user` is `{email}` or null). */
  constructor(config, onChange) {
    this.config = config;
    this.onChange = onChange;
    this.user = null;
    this.local = null; // {token, email, expires_at} from the development route
    this.supabase = null;
  }

  get supabaseConfigured() {
    return Boolean(this.config.supabase_url && this.config.supabase_anon_key);
  }

  async start() {
    if (this.supabaseConfigured) {
      const library = await loadSupabase();
      this.supabase = library.createClient(this.config.supabase_url, this.config.supabase_anon_key, {
        auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: true },
      });
      // Runs on sign-in, sign-out and token refresh; a refresh changes nobody.
      this.supabase.auth.onAuthStateChange((_event, session) => {
        if (!this.local) this.setUser(session ? { email: session.user?.email ?? "" } : null);
      });
      const { data } = await this.supabase.auth.getSession();
      if (data.session) this.setUser({ email: data.session.user?.email ?? "" });
    }
    const saved = this.config.dev_sign_in ? readLocal() : null;
    if (saved && !this.user) {
      this.local = saved;
      this.setUser({ email: saved.email });
    }
    if (!this.user) this.setUser(null);
  }

  setUser(user) {
    const before = this.user ? this.user.email : null;
    const after = user ? user.email : null;
    this.user = user;
    if (before !== after || user === null) this.onChange(user);
  }

  async token() {
    if (this.local) return this.local.token;
    if (this.supabase) {
      const { data } = await this.supabase.auth.getSession(); // refreshes an expired token
      return data.session?.access_token ?? "";
    }
    return "";
  }

  async signInLocally(email) {
    const response = await fetch("/web/dev-token", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email }),
    });
    if (!response.ok) throw await asError(response);
    const issued = await response.json();
    this.local = { token: issued.access_token, email: issued.email, expires_at: Date.now() + issued.expires_in * 1000 };
    sessionStorage.setItem(LOCAL, JSON.stringify(this.local));
    this.setUser({ email: issued.email });
  }

  async signInWithPassword(email, password) {
    const { error } = await this.supabase.auth.signInWithPassword({ email, password });
    if (error) throw new Error(error.message);
  }

  async signUp(email, password) {
    const { data, error } = await this.supabase.auth.signUp({ email, password });
    if (error) throw new Error(error.message);
    return data.session ? "" : "Check your inbox to confirm your address, then sign in.";
  }

  async sendLink(email) {
    const redirect = `${location.origin}/`;
    const { error } = await this.supabase.auth.signInWithOtp({ email, options: { emailRedirectTo: redirect } });
    if (error) throw new Error(error.message);
  }

  async signOut() {
    sessionStorage.removeItem(LOCAL);
    const wasLocal = this.local !== null;
    this.local = null;
    // This browser only: the default ("global") would end the user's sessions everywhere,
    // and a 401 from Docent (during a key rotation, say) signs the page out too.
    if (this.supabase && !wasLocal) await this.supabase.auth.signOut({ scope: "local" });
    this.setUser(null);
  }
}

function readLocal() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(LOCAL) ?? "null");
    return saved && saved.expires_at > Date.now() + 60_000 ? saved : null;
  } catch {
    return null;
  }
}

function loadSupabase() {
  if (window.supabase) return Promise.resolve(window.supabase);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/static/vendor/supabase.js";
    script.onload = () => resolve(window.supabase);
    script.onerror = () => reject(new Error("supabase-js did not load"));
    document.head.append(script);
  });
}
