//! Upstream servers on this machine's loopback for the egress tests: cleartext HTTP, HTTPS
//! with a certificate of its own, raw TCP and an HTTP `CONNECT` proxy. Each serves a bounded
//! number of connections on a thread of its own; nothing here dials anywhere but loopback.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Read an HTTP request head (up to the blank line) byte by byte.
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn answer(stream: &mut impl Write, body: &str) {
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
}

fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// An HTTP server answering each of its first `count` requests with `body`; its port.
pub fn http(body: &'static str, count: usize) -> u16 {
    let (listener, port) = listen();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            read_head(&mut stream);
            answer(&mut stream, body);
        }
    });
    port
}

/// An HTTPS server with a self-signed certificate for `names`, answering each of its first
/// `count` requests with `"<body> <server name it was asked for>"`.
pub struct TlsUpstream {
    pub port: u16,
    /// The certificate (PEM): the only one a client that trusts it can verify.
    pub cert_pem: String,
}

impl TlsUpstream {
    pub fn start(names: &[&str], body: &'static str, count: usize) -> TlsUpstream {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names).unwrap();
        let cert_pem = certified.cert.pem();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let config = Arc::new(config);
        let (listener, port) = listen();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(count) {
                let Ok(stream) = stream else { continue };
                let config = config.clone();
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    read_head(&mut tls);
                    let sni = tls.conn.server_name().unwrap_or("").to_string();
                    answer(&mut tls, &format!("{body} {sni}"));
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        TlsUpstream { port, cert_pem }
    }
}

/// A raw TCP server that writes `greeting` to each of its first `count` connections.
pub fn raw(greeting: &'static str, count: usize) -> u16 {
    let (listener, port) = listen();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.write_all(greeting.as_bytes());
        }
    });
    port
}

/// An HTTP forward proxy that serves `CONNECT host:port` by dialling the loopback port
/// `routes` gives for `host:port` (refusing every other target with 403), and records each
/// target asked for.
pub struct ConnectProxy {
    pub port: u16,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start(routes: HashMap<String, u16>, count: usize) -> ConnectProxy {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (listener, port) = listen();
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(count) {
                let Ok(mut client) = stream else { continue };
                let head = read_head(&mut client);
                let target = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or("")
                    .to_string();
                log.lock().unwrap().push(target.clone());
                let Some(upstream_port) = routes.get(&target) else {
                    let _ =
                        client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
                    continue;
                };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", *upstream_port)) else {
                    let _ =
                        client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                    continue;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                splice(client, upstream);
            }
        });
        ConnectProxy { port, asked }
    }
}

/// Copy both ways between `a` and `b` until each side is done.
fn splice(a: TcpStream, b: TcpStream) {
    let (mut a_read, mut b_write) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut b_read, mut a_write) = (b, a);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut b_read, &mut a_write);
        let _ = a_write.shutdown(std::net::Shutdown::Write);
    });
}
