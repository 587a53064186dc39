//! The dashboard: one self-contained page (HTML, CSS, JavaScript and SVG, no external asset)
//! over the admin endpoints, with a login form that trades the token for a session cookie.
//!
//! A browser cannot send a bearer header from a typed URL, so `GET {prefix}/dashboard` answers a
//! login form until the browser holds a session: `POST {prefix}/dashboard/login` with the token
//! sets a short-lived `HttpOnly`, `SameSite=Strict` cookie (`Secure` with
//! [`AdminRouter::secure_cookie`](super::AdminRouter::secure_cookie)) scoped to the prefix. With it,
//! the page's requests to the JSON endpoints pass; a state-changing one (`PUT …/log-level`) must
//! also carry the session's CSRF token in `X-CSRF-Token`. The page and the form are sent with a
//! strict `Content-Security-Policy`: the page's one script and one style are allowed by their
//! SHA-256 hash, nothing else runs, nothing is loaded from elsewhere.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest as _;

/// The name of the session cookie.
pub(crate) const COOKIE_NAME: &str = "tracelight_admin";

/// How long a session lasts by default.
pub(crate) const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);

/// How many sessions are kept at once; past it, the one that ends soonest goes.
const MAX_SESSIONS: usize = 64;

const STYLE: &str = include_str!("assets/dashboard.css");
const SCRIPT: &str = include_str!("assets/dashboard.js");

/// `'sha256-…'` of a page's inline element, as the Content-Security-Policy names it.
fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The policy of both pages: the style (and on the dashboard, the script) by hash; requests to
/// this origin only; no frames, no base, forms to this origin.
static CSP: LazyLock<(String, String)> = LazyLock::new(|| {
    let style = csp_hash(STYLE);
    let script = csp_hash(SCRIPT);
    let common = "default-src 'none'; img-src 'self' data:; connect-src 'self'; \
                  form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    (
        format!("{common}; style-src {style}; script-src {script}"),
        format!("{common}; style-src {style}; script-src 'none'"),
    )
});

/// One signed-in browser.
struct Session {
    csrf: String,
    expires: Instant,
}

/// The sessions of one admin router.
pub(crate) struct Sessions {
    ttl: Duration,
    secure: bool,
    /// The cookie's `Path`: the admin prefix.
    path: String,
    map: Mutex<HashMap<String, Session>>,
}

/// What a session cookie opened.
pub(crate) struct SessionAuth {
    /// The session's CSRF token.
    pub(crate) csrf: String,
}

impl Sessions {
    pub(crate) fn new(ttl: Duration, secure: bool, prefix: &str) -> Sessions {
        Sessions {
            ttl,
            secure,
            path: if prefix.is_empty() {
                "/".to_owned()
            } else {
                prefix.to_owned()
            },
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new session: its id and CSRF token. `None` when the OS gives no randomness.
    pub(crate) fn open(&self, now: Instant) -> Option<(String, String)> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut map = crate::util::lock(&self.map);
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now.checked_add(self.ttl).unwrap_or(now),
            },
        );
        Some((id, csrf))
    }

    /// The session the request's cookie names, if it is open.
    pub(crate) fn check(&self, headers: &HeaderMap, now: Instant) -> Option<SessionAuth> {
        let id = session_cookie(headers)?;
        let map = crate::util::lock(&self.map);
        let s = map.get(id)?;
        (s.expires > now).then(|| SessionAuth {
            csrf: s.csrf.clone(),
        })
    }

    /// Ends the request's session.
    pub(crate) fn close(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            crate::util::lock(&self.map).remove(id);
        }
    }

    /// The `Set-Cookie` value of a new session.
    pub(crate) fn cookie(&self, id: &str) -> String {
        format!(
            "{COOKIE_NAME}={id}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.path,
            self.ttl.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that ends a session in the browser.
    pub(crate) fn cleared_cookie(&self) -> String {
        format!(
            "{COOKIE_NAME}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict{}",
            self.path,
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// 32 random bytes from the OS, as 64 hex digits.
fn random_hex() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The session id the `Cookie` headers carry.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request carries a session cookie of the right shape (open or not).
pub(crate) fn has_session_cookie(headers: &HeaderMap) -> bool {
    session_cookie(headers).is_some()
}

/// Whether a form post comes from another origin: by the browser's `Sec-Fetch-Site` (only
/// `same-origin` and `none`, a typed address, pass), else by an `Origin` whose host is not the
/// request's `Host` (`Origin: null`, which the page's `no-referrer` policy makes browsers send,
/// says nothing).
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
    let header = |k| headers.get(k).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some("null"), _) => false,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub(crate) fn csrf_matches(auth: &SessionAuth, headers: &HeaderMap) -> bool {
    let Some(given) = headers.get("x-csrf-token").map(HeaderValue::as_bytes) else {
        return false;
    };
    let want = auth.csrf.as_bytes();
    if given.len() != want.len() {
        return false;
    }
    let mut acc = 0u8;
    for (a, b) in given.iter().zip(want) {
        acc = std::hint::black_box(acc | (a ^ b));
    }
    acc == 0
}

/// The token of a login form's body (`token=…`, form-encoded).
pub(crate) fn form_token(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Text for an HTML element or attribute.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(
    status: StatusCode,
    csp: &str,
    body: String,
    extra: Option<(axum::http::HeaderName, String)>,
) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set(h, CONTENT_TYPE, "text/html; charset=utf-8");
    set(h, CONTENT_SECURITY_POLICY, csp);
    set(h, X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, REFERRER_POLICY, "no-referrer");
    set(h, CACHE_CONTROL, "no-store");
    set(h, X_FRAME_OPTIONS, "DENY");
    if let Some((k, v)) = extra {
        set(h, k, &v);
    }
    r
}

/// The login form; `problem` says why the last attempt failed.
pub(crate) fn login_page(
    status: StatusCode,
    service: &str,
    dashboard_path: &str,
    problem: Option<&str>,
) -> Response {
    let problem = problem
        .map(|p| format!("<p class=\"bad\" id=\"problem\">{}</p>", escape_html(p)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{service} · tracelight admin</title><style>{STYLE}</style></head>\
         <body><section class=\"login\"><h1>{service}</h1><p class=\"muted\">tracelight admin: \
         sign in with the admin token.</p>{problem}\
         <form method=\"post\" action=\"{dashboard}/login\" id=\"login\">\
         <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" \
         placeholder=\"admin token\" required autofocus>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form></section></body></html>\n",
        service = escape_html(service),
        dashboard = escape_html(dashboard_path),
    );
    html(status, &CSP.1, body, None)
}

/// The dashboard itself, for a session with this CSRF token.
pub(crate) fn dashboard_page(service: &str, dashboard_path: &str, csrf: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"csrf-token\" content=\"{csrf}\">\
         <title>{service} · tracelight</title><style>{STYLE}</style></head><body>\
         <header><h1>{service}</h1><span class=\"muted\" id=\"updated\"></span>\
         <span id=\"status\"></span><span class=\"grow\"></span>\
         <button type=\"button\" id=\"pause\">Pause</button>\
         <form method=\"post\" action=\"{dashboard}/logout\" id=\"logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Sign out</button></form></header><main>\
         <section id=\"errors\"><h2>Errors <span class=\"muted\" id=\"errors-total\"></span></h2>\
         <div id=\"errors-body\" class=\"muted\">Loading…</div></section>\
         <section id=\"performance\"><h2>Slow operations and routes</h2>\
         <div id=\"perf-body\" class=\"muted\">Loading…</div></section>\
         <section id=\"security\"><h2>Security events <span class=\"muted\" id=\"security-total\"></span></h2>\
         <div id=\"security-body\" class=\"muted\">Loading…</div></section>\
         <section id=\"streams\"><h2>Streams and export</h2>\
         <div id=\"streams-body\" class=\"muted\">Loading…</div></section>\
         <section id=\"level\"><h2>Log level</h2><p><code id=\"level-filter\"></code> \
         <span class=\"muted\" id=\"level-meta\"></span></p>\
         <form class=\"inline\" id=\"level-form\"><input id=\"level-input\" \
         placeholder=\"info,my_crate=debug (empty: back to the start)\" size=\"32\">\
         <input id=\"level-for\" placeholder=\"for (10m)\" size=\"8\">\
         <button type=\"submit\" id=\"level-apply\">Apply</button>\
         <span id=\"level-result\" class=\"muted\"></span></form></section>\
         </main><script>{SCRIPT}</script></body></html>\n",
        service = escape_html(service),
        csrf = escape_html(csrf),
        dashboard = escape_html(dashboard_path),
    );
    html(StatusCode::OK, &CSP.0, body, None)
}

/// `303 See Other` to `location`, with a cookie to set.
pub(crate) fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(SET_COOKIE, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_hashes_of_the_inline_script_and_style() {
        let (page, login) = &*CSP;
        assert!(page.contains(&csp_hash(SCRIPT)) && page.contains(&csp_hash(STYLE)));
        assert!(login.contains("script-src 'none'"));
        assert!(!page.contains("unsafe-inline") && !page.contains("unsafe-eval"));
    }

    #[test]
    fn cookies_and_tokens() {
        let s = Sessions::new(Duration::from_secs(60), true, "/admin/logs");
        let now = Instant::now();
        let (id, csrf) = s.open(now).expect("randomness");
        assert_eq!((id.len(), csrf.len()), (64, 64));
        let cookie = s.cookie(&id);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("; Secure") && cookie.contains("Path=/admin/logs"));
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={id}")).unwrap(),
        );
        let auth = s.check(&h, now).expect("open");
        assert_eq!(auth.csrf, csrf);
        assert!(
            s.check(&h, now + Duration::from_secs(61)).is_none(),
            "expired"
        );
        assert!(!csrf_matches(&auth, &h));
        h.insert("x-csrf-token", HeaderValue::from_str(&csrf).unwrap());
        assert!(csrf_matches(&auth, &h));
        s.close(&h);
        assert!(s.check(&h, now).is_none(), "closed");
        assert_eq!(
            form_token(b"token=abc%20def&x=1").as_deref(),
            Some("abc def")
        );
        assert_eq!(form_token(b"token="), None);
        assert_eq!(
            escape_html("<script>\"'&"),
            "&lt;script&gt;&quot;&#39;&amp;"
        );
    }
}
