//! Signing in to the dashboard on a gateway with a read token. A browser cannot send an
//! `Authorization` header when it loads a page, so `POST /login` with the token sets a
//! session cookie (`bw_session`: HttpOnly, SameSite=Strict, 30 days) that stands for the read
//! token on reads. Its value is an HMAC-SHA256 of a fixed text under the read token: any
//! gateway replica checks it, nothing is stored, the token cannot be read back from it, and
//! changing the read token ends every session. The cookie never authorizes a request that
//! changes state: those still need the API token as a bearer, so a page elsewhere cannot make
//! a signed-in browser change anything.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use maud::html;

use super::html::page;
use crate::secret::constant_time_eq;
use crate::{ApiError, AppState};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "bw_session";

/// How long a session lasts, in seconds.
const SESSION_SECONDS: u64 = 30 * 24 * 3600;

/// The session cookie's value for `read_token`.
fn session_value(read_token: &str) -> String {
    // An HMAC key may have any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(read_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"borderwatch dashboard session v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Whether the request carries a session cookie made for `read_token`.
pub(crate) fn has_session(headers: &HeaderMap, read_token: &str) -> bool {
    let expected = session_value(read_token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| {
            name == COOKIE && constant_time_eq(value.as_bytes(), expected.as_bytes())
        })
}

/// Where a browser that must sign in first is sent: the sign-in page, which sends it back.
pub(crate) fn redirect_to_login(path_and_query: &str) -> Response {
    let next = crate::page::percent_encode(path_and_query);
    see_other(&format!("/login?next={next}"), None)
}

/// A path on this site to go to after signing in; anything else (another site, `//host`, a
/// header break) is the dashboard.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Cookies are marked Secure when the request came over HTTPS (behind a proxy that says so).
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https { "; Secure" } else { "" }
}

fn login_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let body = html! {
        h1 { "Sign in" }
        p {
            "This gateway needs its read token (or its API token) for reads. The token is sent "
            "once; the browser then keeps a session cookie, which reads but never changes anything."
        }
        @if let Some(problem) = problem {
            p class="problem" { (problem) }
        }
        form method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label {
                "Token "
                input type="password" name="token" autocomplete="current-password" required autofocus;
            }
            " "
            button type="submit" { "Sign in" }
        }
        p { "API clients send " code { "Authorization: Bearer <token>" } " instead." }
    };
    let mut response = super::html::html_response(page("Sign in", body).into_string().into());
    *response.status_mut() = status;
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

/// `GET /login`: the sign-in form (straight on to `next` when the gateway has no read token).
pub(crate) async fn login_form(
    State(state): State<AppState>,
    query: Result<Query<NextParam>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = query.ok().and_then(|Query(q)| q.next);
    let next = safe_next(next.as_deref());
    if state.cfg.read_token.is_none() {
        return see_other(next, None);
    }
    login_page(StatusCode::OK, next, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /login`: checks the token and sets the session cookie.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|e| {
        ApiError::bad_request(format!(
            "send the form as application/x-www-form-urlencoded with a `token` field: {e}"
        ))
    })?;
    let next = safe_next(form.next.as_deref());
    let Some(read) = state.cfg.read_token.as_deref() else {
        return Ok(see_other(next, None));
    };
    // Both comparisons always run, so timing does not say which token matched.
    let r = constant_time_eq(form.token.as_bytes(), read.as_bytes());
    let w = state
        .cfg
        .api_token
        .as_deref()
        .is_some_and(|t| constant_time_eq(form.token.as_bytes(), t.as_bytes()));
    if !(r | w) {
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            next,
            Some("That is not this gateway's read token or API token."),
        ));
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{}",
        session_value(read),
        secure(&headers)
    );
    Ok(see_other(next, Some(cookie)))
}

/// `POST /logout`: ends the session in this browser.
pub(crate) async fn logout(headers: HeaderMap) -> Response {
    let cookie = format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        secure(&headers)
    );
    see_other("/login", Some(cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_value_depends_on_the_token_and_does_not_show_it() {
        let a = session_value("s3cret-read-token");
        assert_eq!(a.len(), 64);
        assert!(!a.contains("s3cret"));
        assert_ne!(a, session_value("another-token"));
        assert_eq!(a, session_value("s3cret-read-token"));
    }

    #[test]
    fn only_paths_of_this_site_are_gone_to_after_signing_in() {
        assert_eq!(
            safe_next(Some("/series/fsb/PRK/study")),
            "/series/fsb/PRK/study"
        );
        assert_eq!(safe_next(Some("/?country=PRK")), "/?country=PRK");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "evil",
            "/a\r\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        let value = format!("theme=dark; {COOKIE}={}; x=y", session_value("t"));
        headers.insert(header::COOKIE, HeaderValue::from_str(&value).unwrap());
        assert!(has_session(&headers, "t"));
        assert!(!has_session(&headers, "u"));
        assert!(!has_session(&HeaderMap::new(), "t"));
    }
}
