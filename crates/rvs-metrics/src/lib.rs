//! # rvs-metrics — what rvsd shows on its HTTP listener
//!
//! * `GET /metrics`: Prometheus text ([`prometheus`]), node_exporter's IPVS names first;
//! * `GET /`: a live dashboard (one HTML page, no external resources) that polls
//! * `GET /api/v1/state`: services, real servers, weights, health, rates, drop reasons and
//!   VRRP states as JSON ([`state`]).
//!
//! Every answer is a read-only view of the daemon's state, taken through a [`Source`]
//! (rvsd answers it with the same requests `rvsadm` sends, each holding the table lock
//! only for its copy) and rendered after the lock is released. The listener defaults to
//! localhost: the page and the metrics say what runs where, which is not for everyone.

pub mod prometheus;
pub mod state;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rvs_api::StatusReply;
use rvs_core::{Counters, Rates, ServiceInfo};
use std::sync::Arc;

/// rvsd's metrics port when `--metrics` is given without an address. In the exporters'
/// range (9100-9999) that firewalls and Prometheus habits expect, apart from the ports
/// of node_exporter (9100) and keepalived-exporter (9165), which directors often run.
pub const DEFAULT_PORT: u16 = 9652;

/// What one answer is made of.
#[derive(Clone, Debug)]
pub struct View {
    pub services: Vec<ServiceInfo>,
    pub status: StatusReply,
    /// Totals over every service, and their rates.
    pub global: (Counters, Rates),
}

/// Where views come from (rvsd's daemon). Called on a blocking thread.
pub trait Source: Send + Sync + 'static {
    fn view(&self) -> View;
}

type Shared = Arc<dyn Source>;

async fn view(src: &Shared) -> Result<View, StatusCode> {
    let s = src.clone();
    tokio::task::spawn_blocking(move || s.view())
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn metrics(State(src): State<Shared>) -> Response {
    match view(&src).await {
        Ok(v) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            prometheus::render(&v),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn api_state(State(src): State<Shared>) -> Response {
    match view(&src).await {
        Ok(v) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(state::build(&v)),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

/// The routes, for a listener of the caller's choosing.
pub fn router(src: Arc<dyn Source>) -> axum::Router {
    axum::Router::new()
        .route("/", get(dashboard))
        .route("/metrics", get(metrics))
        .route("/api/v1/state", get(api_state))
        .with_state(src)
}

/// Serves until the task is dropped.
///
/// # Errors
/// When accepting fails for good.
pub async fn serve(listener: tokio::net::TcpListener, src: Arc<dyn Source>) -> std::io::Result<()> {
    axum::serve(listener, router(src)).await
}
