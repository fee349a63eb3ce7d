//! A moto S3 server (`python3 -m moto.server`, pip `moto[server]`, which
//! `.ci/run` installs) on a free loopback port, with one bucket.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use memwal_core::{StorageOptions, StorageRoot};

pub const BUCKET: &str = "memwal-test";
pub const SECRET: &str = "SECRET-do-not-print-0123456789";

/// A running server; killed on drop.
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn spawn_server(port: u16) -> Child {
    let mut command = Command::new("python3");
    command
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // Die with the thread that spawned us, so a shared server never
        // outlives the test process.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    command
        .spawn()
        .expect("python3 -m moto.server (pip install 'moto[server]')")
}

/// Start a server and create the bucket.
pub fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moto = Moto {
        child: Some(spawn_server(port)),
        port,
    };
    wait_ready(port);
    moto
}

fn wait_ready(port: u16) {
    // The server gives no readiness signal: poll until it accepts connections.
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = http(
        port,
        &format!("PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    assert!(
        created.starts_with("HTTP/1.1 200"),
        "create bucket: {created}"
    );
}

/// One server for the whole test process. It is spawned from a thread that
/// waits on it for good, because the parent-death signal follows the
/// spawning thread.
pub fn shared_moto() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = spawn_server(port);
            wait_ready(port);
            tx.send(port).unwrap();
            // Blocks until the process exits and the server dies with it.
            let _ = child.wait();
        });
        rx.recv().expect("moto server thread")
    })
}

pub fn options(port: u16) -> StorageOptions {
    StorageOptions {
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: Some("memwal".into()),
        secret_access_key: Some(SECRET.into()),
        session_token: None,
        allow_http: Some(true),
        ..Default::default()
    }
}

/// A fresh prefix of the bucket.
pub fn s3_root(port: u16, prefix: &str) -> StorageRoot {
    let uri = format!("s3://{BUCKET}/{prefix}-{}", uuid::Uuid::new_v4());
    StorageRoot::open_with(&uri, &options(port)).unwrap()
}
