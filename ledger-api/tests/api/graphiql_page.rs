//! `GET /graphql`: our GraphiQL page, whose every script and stylesheet comes from the binary,
//! served without a key, under a policy that lets it load nothing from anywhere else.

use crate::helpers::*;

/// The values of every `src="…"` and `href="…"` attribute in `html`.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (start, _) in html.match_indices(attribute) {
            let value = &html[start + attribute.len()..];
            let end = value.find('"').expect("attribute closed");
            found.push(value[..end].to_owned());
        }
    }
    found
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_graphiql_page_and_everything_it_loads_come_from_the_binary() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let policy = header(&page, "content-security-policy").to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "connect-src 'self' ws: wss:",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"api-key\" name=\"api-key\" type=\"password\""));
    for external in ["http://", "https://", "\"//"] {
        assert!(!html.contains(external), "the page names {external}…");
    }
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script defer src=\"/graphql/assets/").count(),
        "every script is one of the server's files, none inline"
    );

    let references = references(&html);
    let mut kinds = Vec::new();
    for reference in references.iter().filter(|r| !r.starts_with("data:")) {
        assert!(
            reference.starts_with("/graphql/assets/") && reference.contains("?v="),
            "{reference} is not a versioned asset of the server"
        );
        // No key: the assets are public code.
        let asset = app
            .client
            .get(format!("{}{reference}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{reference}");
        let path = reference.split('?').next().unwrap();
        let expected = if path.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            panic!("{reference} is neither a script nor a stylesheet")
        };
        assert_eq!(header(&asset, "content-type"), expected, "{reference}");
        assert_eq!(
            header(&asset, "cache-control"),
            "public, max-age=31536000, immutable",
            "{reference}"
        );
        let body = asset.text().await.unwrap();
        assert!(body.len() > 100, "{reference} is empty");
        if path.ends_with("/page.js") {
            for external in ["http://", "https://"] {
                assert!(!body.contains(external), "page.js names {external}…");
            }
        }
        kinds.push(path.rsplit('/').next().unwrap().to_owned());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "graphiql.min.css",
            "graphiql.min.js",
            "page.css",
            "page.js",
            "react-dom.production.min.js",
            "react.production.min.js"
        ]
    );
}

#[tokio::test]
async fn an_asset_asked_for_without_its_current_version_is_not_kept_and_an_unknown_one_is_not_found(
) {
    let app = spawn_app().await;
    let stale = app
        .client
        .get(format!(
            "{}/graphql/assets/page.js?v=0000000000000000",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(header(&stale, "cache-control"), "no-cache");
    let licence = app
        .client
        .get(format!("{}/graphql/assets/LICENSE.graphiql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&licence, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert!(licence.text().await.unwrap().contains("MIT License"));
    for missing in ["nothing.js", "..%2FCargo.toml"] {
        let answer = app
            .client
            .get(format!("{}/graphql/assets/{missing}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{missing}");
    }
}
