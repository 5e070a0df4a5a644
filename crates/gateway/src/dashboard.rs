//! The dashboard: server-rendered HTML pages over the same state as the API. `/` lists the
//! latest surges (filters as a GET form, live updates and the subscribe form as small
//! scripts on top) and the open incidents of `bw_incidents`;
//! `/series/{source}/{country}/{category}` draws a series as an SVG chart with its
//! statistical band, surges (historical ones labelled, each with its incident) and the
//! baselines their explanations cite. Pages and
//! chart are `maud` templates, which escape every value from data or the URL; the pages work
//! without JavaScript. On a gateway with a read token, `/login` signs a browser in with a
//! session cookie.

mod chart;
mod home;
mod html;
mod login;
mod series;

pub(crate) use login::{has_session, login, login_form, logout, redirect_to_login};

/// `/`: the latest surges (routed in the gateway's `routes()`, with the API).
pub(crate) use home::page_handler as home_page;
/// `/series/{source}/{country}/{category}`: one series as a chart.
pub(crate) use series::page_handler as series_page;
/// The chart alone, for `/v1/series/{source}/{country}/{category}/chart.svg` and `.png`.
pub(crate) use series::standalone_chart as chart_svg;
