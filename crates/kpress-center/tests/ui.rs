//! The web UI's pages, login and assets: pages need the cookie, the login sets it,
//! assets are open and typed.

use crate::support::{summaries, Call, TestCenter, TOKEN};

fn ui_file(name: &str) -> String {
    let path = format!("{}/ui/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn pages_need_the_cookie() {
    let c = TestCenter::sqlite().await;
    c.create("page", summaries::TEST, 1).await;
    for (path, file) in [
        ("/", "index.html"),
        ("/runs/page", "run.html"),
        ("/compare?a=x&b=y", "compare.html"),
    ] {
        for call in [
            Call::new("GET", path),
            Call::new("GET", path).cookie("wrong"),
            Call::new("GET", path).token(TOKEN),
        ] {
            let r = c.send(call).await;
            assert_eq!(r.status, 303, "{path}");
            assert_eq!(r.header("location"), Some("/login"), "{path}");
        }
        let r = c.send(Call::new("GET", path).cookie(TOKEN)).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.header("content-security-policy").is_some());
        assert_eq!(r.text(), ui_file(file), "{path}");
    }
    let r = c.send(Call::new("GET", "/login")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), ui_file("login.html"));
}

#[tokio::test]
async fn logging_in_sets_the_cookie() {
    let c = TestCenter::sqlite().await;
    let form = |token: &str| {
        Call::new("POST", "/login").body(
            "application/x-www-form-urlencoded",
            format!("token={token}").into_bytes(),
        )
    };
    let r = c.send(form("wrong")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some(kpress_center::ui::LOGIN_FAILED));
    assert!(r.header("set-cookie").is_none());

    let r = c.send(form(TOKEN)).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/"));
    let cookie = r.header("set-cookie").expect("set-cookie").to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|p| p == part), "{cookie}");
    }
    let pair = cookie.split(';').next().expect("pair");
    let r = c.send(Call::new("GET", "/").header("cookie", pair)).await;
    assert_eq!(r.status, 200);
    let r = c
        .send(Call::new("GET", "/api/runs").header("cookie", pair))
        .await;
    assert_eq!(r.status, 200);

    // A token with characters a cookie cannot hold still round-trips.
    let odd = "se cret;=%";
    let c = TestCenter::sqlite_with(|config| config.token = odd.into()).await;
    let r = c.send(form("se+cret%3B%3D%25")).await;
    assert_eq!(r.header("location"), Some("/"));
    let pair = r
        .header("set-cookie")
        .expect("set-cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let r = c
        .send(Call::new("GET", "/api/runs").header("cookie", &pair))
        .await;
    assert_eq!(r.status, 200, "{pair}");

    c.send(Call::new("POST", "/login").body("application/json", b"{}".to_vec()))
        .await
        .assert_error(415, "unsupported_media_type");
    c.send(
        Call::new("POST", "/login")
            .body("application/x-www-form-urlencoded", b"nothing=1".to_vec()),
    )
    .await
    .assert_error(400, "bad_request");
}

#[tokio::test]
async fn assets_are_open_and_typed() {
    let c = TestCenter::sqlite().await;
    for (file, kind) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("chart.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ] {
        let r = c.send(Call::new("GET", &format!("/ui/{file}"))).await;
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.header("content-type"), Some(kind), "{file}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.text(), ui_file(file));
    }
    for missing in ["/ui/index.html", "/ui/nope.js", "/ui/..%2Fopenapi.yaml"] {
        c.send(Call::new("GET", missing))
            .await
            .assert_error(404, "not_found");
    }
}
