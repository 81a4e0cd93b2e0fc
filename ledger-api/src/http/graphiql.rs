//! `GET /graphql`: our GraphiQL page, and `GET /graphql/assets/{name}`: everything it loads.
//!
//! Every byte the page needs is in the binary (GraphiQL, React and ReactDOM vendored under
//! `ledger-api/assets/graphiql/`, with `refresh.sh` and `SHA256SUMS` to re-download and check
//! them; our page beside this file), so it works on a machine with no internet access, and
//! its Content-Security-Policy lets it load nothing from anywhere else. The page asks for the
//! API key once and keeps it in the tab's `sessionStorage` (see `graphiql/page.js`).
//!
//! The assets are public code: served without a key. The page names each one with a hash of
//! its content (`?v=…`), so a browser may keep it for a year and still picks up a new build
//! at once; an asset asked for without the current hash is served but not kept.

use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where the assets are served.
pub const ASSETS_PATH: &str = "/graphql/assets";

/// What the page may load and from where: only this server (scripts from its files, no inline
/// script), GraphiQL's fonts are `data:` URLs inside its stylesheet, and subscriptions open
/// a websocket to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// How long a browser keeps an asset asked for with its current hash: a year, unchanged.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";
/// For the page, and an asset asked for without its current hash: ask again every time.
const CACHE_NEVER: &str = "no-cache";

/// One file served under [`ASSETS_PATH`].
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! vendored {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../assets/graphiql/", $name)),
        }
    };
}

macro_rules! ours {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("graphiql/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    vendored!("react.production.min.js", JAVASCRIPT),
    vendored!("react-dom.production.min.js", JAVASCRIPT),
    vendored!("graphiql.min.js", JAVASCRIPT),
    vendored!("graphiql.min.css", CSS),
    vendored!("LICENSE.graphiql", TEXT),
    vendored!("LICENSE.react", TEXT),
    vendored!("LICENSE.react-dom", TEXT),
    ours!("page.js", JAVASCRIPT),
    ours!("page.css", CSS),
];

/// The page's template: `{{name}}` stands for the versioned address of asset `name`.
const PAGE_TEMPLATE: &str = include_str!("graphiql/page.html");

/// An asset's content hash, as the page names it: 16 hex digits of its SHA-256.
fn version(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// The page with its assets' addresses filled in, and each asset's current version.
struct Versioned {
    page: String,
    /// Every asset's [`version`], in [`ASSETS`]' order.
    versions: Vec<String>,
}

/// Computed once, on the first request for the page or an asset.
static VERSIONED: LazyLock<Versioned> = LazyLock::new(|| {
    let versions: Vec<String> = ASSETS.iter().map(|asset| version(asset.bytes)).collect();
    let mut page = PAGE_TEMPLATE.to_owned();
    for (asset, version) in ASSETS.iter().zip(&versions) {
        page = page.replace(
            &format!("{{{{{}}}}}", asset.name),
            &format!("{ASSETS_PATH}/{}?v={version}", asset.name),
        );
    }
    Versioned { page, versions }
});

/// The headers every answer of the page carries: what it may load, that it is HTML, that no
/// one may frame it, and that it sends no referrer anywhere.
fn page_headers() -> [(header::HeaderName, HeaderValue); 6] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_NEVER)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

pub async fn page() -> Response {
    (page_headers(), VERSIONED.page.clone()).into_response()
}

#[derive(Deserialize)]
pub struct AssetQuery {
    v: Option<String>,
}

pub async fn asset(Path(name): Path<String>, Query(query): Query<AssetQuery>) -> Response {
    let Some((index, asset)) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, asset)| asset.name == name)
    else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let current = query.v.as_deref() == Some(VERSIONED.versions[index].as_str());
    let cache = if current { CACHE_FOREVER } else { CACHE_NEVER };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}
