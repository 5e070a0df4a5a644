//! The dashboard: server-rendered HTML pages over the same state as the API. `/` lists the
//! latest surges (filters as a GET form, live updates and the subscribe form as small
//! scripts on top); `/series/{source}/{country}/{category}` draws a series as an SVG chart
//! with its statistical band, surges and the baselines their explanations cite. Every value
//! from data or the URL is escaped; the pages work without JavaScript.

mod chart;
mod home;
mod html;
mod series;

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// The dashboard's routes, merged into the gateway's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/", get(home::page_handler)).route(
        "/series/{source}/{country}/{category}",
        get(series::page_handler),
    )
}
