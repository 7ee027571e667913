//! The baseline for `coldstart`: the smallest axum server that answers the health probe the way
//! the `lifeboat handler` does, on the same runtime flavour (multi-threaded tokio).

use std::net::Ipv4Addr;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .expect("FUNCTIONS_CUSTOMHANDLER_PORT must be set")
        .parse()
        .expect("FUNCTIONS_CUSTOMHANDLER_PORT must be a port number");
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.expect("bind the handler port");
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app).await.expect("serve");
}
