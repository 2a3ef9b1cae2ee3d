//! The status page at `/ui/`: one HTML page, its script and its style, embedded in the binary (no CDN, works
//! offline) and served on the REST listener, behind its authentication when that is on. The page reads
//! everything with one `GET /connectors?expand=status&expand=info&expand=metrics` a refresh and acts through
//! the REST API like any client. These are pages, not API operations: they are not in `openapi.json`.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// Scripts and styles from the page's own origin only: API texts can never run as code.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Always fresh after an upgrade of the worker; the files are small.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `/ui/` and its files; `/ui` redirects so the page's relative URLs resolve.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative, so it also works behind a reverse proxy that serves the worker under a path prefix.
        .route("/ui", get(|| async { Redirect::permanent("ui/") }))
        .route("/ui/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/index.html", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

#[cfg(test)]
mod tests {
    /// The page's script and style are its own files: nothing from a CDN, no inline code the policy blocks.
    #[test]
    fn the_page_loads_only_its_own_files() {
        let index = super::INDEX;
        for needle in ["http://", "https://", "<style", "style=", "onclick="] {
            assert!(!index.contains(needle), "index.html has {needle}");
        }
        assert!(index.contains(r#"<script src="app.js"></script>"#) && index.contains(r#"href="app.css""#));
        assert!(!super::SCRIPT.contains("innerHTML"), "texts from the API go in with textContent only");
    }
}
