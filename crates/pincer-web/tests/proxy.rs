#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The egress proxy over a real socket, to real loopback servers (testkit's `FakeWeb`),
//! with the real policy: the only loopback address it may reach is the one named private.

use std::sync::Arc;
use std::time::Duration;

use pincer_config::NetworkMode;
use pincer_sandbox::NetworkProxy as _;
use pincer_testkit::FakeWeb;
use pincer_web::egress::{Egress, EgressSettings};
use pincer_web::proxy::EgressProxy;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

struct Setup {
    sock: std::net::SocketAddr,
    _serving: tokio::task::JoinHandle<()>,
    web: FakeWeb,
    other: FakeWeb,
}

async fn setup() -> Setup {
    let web = FakeWeb::start("k").await.unwrap();
    let other = FakeWeb::start("k").await.unwrap();
    let egress = Arc::new(Egress::new(
        EgressSettings {
            network: NetworkMode::Allowlist,
            allow: vec!["localhost".into()],
            allow_private: vec![format!("127.0.0.1:{}", web.port())],
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            max_redirects: 5,
        },
        None,
    ));
    // As the sandbox hands it over: a listening TCP socket served through `NetworkProxy`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sock = listener.local_addr().unwrap();
    let serving = EgressProxy::new(egress).serve(listener);
    Setup {
        sock,
        _serving: serving,
        web,
        other,
    }
}

/// Sends `head` (then `after`, once the proxy answered) and reads everything back.
async fn exchange(sock: std::net::SocketAddr, head: &str, after: Option<&str>) -> String {
    let mut s = TcpStream::connect(sock).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    if let Some(after) = after {
        // The tunnel's 200 first, then talk through it.
        let mut buf = [0u8; 39];
        s.read_exact(&mut buf).await.unwrap();
        out.extend_from_slice(&buf);
        s.write_all(after.as_bytes()).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the proxy closed the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_tunnel_to_the_named_address_carries_a_request() {
    let t = setup().await;
    let port = t.web.port();
    let out = exchange(
        t.sock,
        &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
        Some(&format!(
            "GET /json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )),
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.1 200 Connection established\r\n\r\n"),
        "{out}"
    );
    assert!(out.contains(r#"{"ok":true,"n":3}"#), "{out}");
}

#[tokio::test]
async fn a_plain_http_request_is_forwarded_in_origin_form() {
    let t = setup().await;
    let port = t.web.port();
    let out = exchange(
        t.sock,
        &format!("GET http://127.0.0.1:{port}/json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Authorization: x\r\n\r\n"),
        None,
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#"{"ok":true,"n":3}"#), "{out}");
}

#[tokio::test]
async fn every_other_destination_is_refused() {
    let t = setup().await;
    let (port, other) = (t.web.port(), t.other.port());
    for target in [
        format!("127.0.0.1:{other}"),
        format!("localhost:{port}"),
        "169.254.169.254:80".to_owned(),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("2130706433:{other}"),
        "evil.example:443".to_owned(),
    ] {
        let out = exchange(t.sock, &format!("CONNECT {target} HTTP/1.1\r\n\r\n"), None).await;
        assert!(out.starts_with("HTTP/1.1 403 Forbidden"), "{target}: {out}");
    }
    let out = exchange(
        t.sock,
        &format!("GET http://127.0.0.1:{other}/json HTTP/1.1\r\n\r\n"),
        None,
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    for bad in [
        "hello\r\n\r\n",
        "GET /json HTTP/1.1\r\n\r\n",
        "GET ftp://x/ HTTP/1.1\r\n\r\n",
    ] {
        let out = exchange(t.sock, bad, None).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{bad:?}: {out}");
    }
    let huge = format!(
        "GET http://x/ HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let out = exchange(t.sock, &huge, None).await;
    assert!(
        out.starts_with("HTTP/1.1 400") && out.contains("too large"),
        "{out}"
    );
}
