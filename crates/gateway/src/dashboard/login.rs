//! Signing in to the dashboard on a gateway with a read token. A browser cannot send an
//! `Authorization` header when it loads a page, so `POST /login` with the token sets a
//! session cookie (`bw_session`: HttpOnly, SameSite=Strict) that stands for the read token on
//! reads. Its value is a random session id (`session.rs`), kept by this gateway process with
//! an expiry (7 days) and revoked at `/logout`: a cookie copied before sign-out reads nothing
//! after it. Sessions live in one process: behind several replicas a browser signs in again
//! where it lands unless the proxy keeps it on one (sticky sessions), and a restart signs
//! every browser out. The cookie never authorizes a request that changes state: those still
//! need the API token as a bearer, so a page elsewhere cannot make a signed-in browser change
//! anything.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use maud::html;

use super::html::page;
use crate::secret::constant_time_eq;
use crate::session::Sessions;
use crate::{ApiError, AppState};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "bw_session";

/// The session ids the request's cookies name.
fn session_ids(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether the request carries the cookie of a live session.
pub(crate) fn has_session(headers: &HeaderMap, sessions: &Sessions) -> bool {
    session_ids(headers).any(|id| sessions.is_live(id))
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
        "{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        state.sessions.create(),
        state.sessions.ttl().as_secs(),
        secure(&headers)
    );
    Ok(see_other(next, Some(cookie)))
}

/// `POST /logout`: ends the session, here and in this browser (the id is revoked, so a copy
/// of the cookie reads nothing after this).
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    for id in session_ids(&headers) {
        state.sessions.revoke(id);
    }
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
        let sessions = Sessions::default();
        let id = sessions.create();
        let mut headers = HeaderMap::new();
        let value = format!("theme=dark; {COOKIE}={id}; x=y");
        headers.insert(header::COOKIE, HeaderValue::from_str(&value).unwrap());
        assert!(has_session(&headers, &sessions));
        assert!(!has_session(&headers, &Sessions::default()));
        assert!(!has_session(&HeaderMap::new(), &sessions));
    }
}
