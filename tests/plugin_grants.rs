//! What a plugin can reach without grants (nothing: no environment, arguments, files or sockets)
//! and with them (exactly the granted TCP address); the host-set reserved config keys.

mod plugin_support;

use std::net::SocketAddr;

use opsync::plugin::{ChangeKind, Grants, PluginError};
use plugin_support::{event, guest_spec, host, item, tight_limits};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn without_grants_a_plugin_sees_no_environment_arguments_or_files() {
    let plugin = host()
        .load(guest_spec(
            "nosy",
            &[("mode", "env")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let receipt = plugin
        .deliver(&event(item("x"), ChangeKind::Updated))
        .await
        .expect("runs");
    // The guest's libc reports `/` as its working directory, but there is nothing behind it.
    assert_eq!(receipt.location, "env=0 args=0 cwd=Some(\"/\") root=false");
}

async fn tcp(grants: Grants, addr: SocketAddr) -> Result<opsync::plugin::Receipt, PluginError> {
    let addr = addr.to_string();
    host()
        .load(guest_spec(
            "caller",
            &[("mode", "tcp"), ("addr", &addr)],
            tight_limits(),
            grants,
        ))
        .expect("loads")
        .deliver(&event(item("x"), ChangeKind::Updated))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_reach_only_a_granted_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        socket.read_to_end(&mut buf).await.expect("read");
        buf
    });

    let err = tcp(Grants::default(), addr).await.expect_err("no grant");
    assert!(err.to_string().contains("plugin `caller`"), "{err}");
    let mut other = addr;
    other.set_port(addr.port().wrapping_add(1));
    let err = tcp(
        Grants {
            tcp: vec![other],
            ..Grants::default()
        },
        addr,
    )
    .await
    .expect_err("another address granted");
    assert!(matches!(err, PluginError::Failed { .. }), "{err}");

    let receipt = tcp(
        Grants {
            tcp: vec![addr],
            ..Grants::default()
        },
        addr,
    )
    .await
    .expect("granted");
    assert_eq!(receipt.location, format!("sent to {addr}"));
    assert_eq!(received.await.expect("server"), b"hello");
}

#[tokio::test]
async fn reserved_config_keys_carry_the_route_key_for_one_call_only() {
    let plugin = host()
        .load(guest_spec(
            "keyed",
            &[("mode", "reserved")],
            tight_limits(),
            Grants::default(),
        ))
        .expect("loads");
    let mut ev = event(item("x"), ChangeKind::Deleted);
    ev.destination_key = Some("Prod/old title".into());
    ev.renamed_to = Some("Prod/new title".into());
    let receipt = plugin.deliver(&ev).await.expect("runs");
    assert_eq!(
        receipt.location,
        "key=Some(\"Prod/old title\") renamed-to=Some(\"Prod/new title\") listed=false"
    );
    // The next call without them sees none: nothing survives a call.
    let receipt = plugin
        .deliver(&event(item("x"), ChangeKind::Updated))
        .await
        .expect("runs");
    assert_eq!(receipt.location, "key=None renamed-to=None listed=false");
}
